"""Restaurant reviews with known aspects: the sample history of tables ``reviews`` and
``reviews_labelled`` and the producer behind ``smartstream produce reviews``.

A restaurant group runs dining rooms (product ``dine_in``) and a delivery app
(``delivery``). Its reviews are templated English sentences in the style of the
SemEval-2014 Task 4 restaurant sentences: 1-4 clauses, each about one aspect, either
explicit (an aspect term: "the pasta", "our waiter", "the terrace", "the bill") or
implicit (a category without a term: "We waited forever." is service negative), with a
polarity said in varied ways (intensifiers, negations, neutral facts, the odd conflict
"the steak was tasty but overcooked"). About 5% of reviews say nothing about any aspect
("We came here on a Tuesday."). Per aspect the polarity mix is ~55% positive, 30%
negative, 10% neutral, 5% conflict.

The labels follow SemEval: ``aspect_terms`` lists ``{"term", "polarity"}`` in order of
mention (the term as it appears in the text), ``aspect_categories`` lists
``{"category", "polarity"}`` per category mentioned (food, service, ambience, price,
anecdotes/miscellaneous); a category mentioned both positively and negatively (or as a
conflict) is ``conflict``, else its opinion wins over neutral.

- ``reviews_labelled`` (the training data): 2,400 reviews in 4 objects of 600, one per
  day 2026-11-20..23 under ``YYYY/MM/DD/labelled-NNN.csv``, ids ``L000001``...
- ``reviews`` (what the app delivers, no labels): one object per hour under
  ``YYYY/MM/DD/HH/reviews-YYYY-MM-DDTHH.csv``, 20-40 reviews created in that hour, ids
  ``R20261124T07-0001``...; the sample is the 24 hours of 2026-11-24.

``smartstream produce reviews --hours N`` continues the hourly drops after the newest
hour in the lake; ``ReviewsDrift`` shifts the topic (``topic=laptops``: SemEval laptop
style reviews, battery, screen, keyboard, ...) or the product mix (``topic=delivery``)
for a share of them. Laptop aspects are labelled ``hardware`` / ``software`` /
``price`` / ``service`` / ``anecdotes/miscellaneous``: outside the restaurant label set,
which is what an off-topic review is.

``generate_reviews`` builds such a frame directly (labels kept as lists), for the ML code.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from .base import RawObject

POLARITIES = ("positive", "negative", "neutral", "conflict")
CATEGORIES = ("food", "service", "ambience", "price", "anecdotes/miscellaneous")
LAPTOP_CATEGORIES = ("hardware", "software", "price", "service", "anecdotes/miscellaneous")
PRODUCTS = ("dine_in", "delivery")
PRODUCT_MIX = {"dine_in": 0.7, "delivery": 0.3}
TOPICS = ("laptops", "delivery")

LABELLED_FILES = 4
LABELLED_PER_FILE = 600
LABELLED_START = date(2026, 11, 20)
HOURLY_START = datetime(2026, 11, 24, tzinfo=timezone.utc)
HOURLY_HOURS = 24
SAMPLE_LAST_HOUR = HOURLY_START + timedelta(hours=HOURLY_HOURS - 1)  # 2026-11-24T23
REVIEWS_PER_HOUR = 30  # Poisson mean, clipped to [20, 40]
HOURLY_COLUMNS = ["review_id", "created_at", "product", "text"]
LABELLED_COLUMNS = ["review_id", "created_at", "text", "aspect_terms", "aspect_categories"]

_POLARITY_MIX = (0.55, 0.30, 0.10, 0.05)
_CLAUSE_COUNTS = ((1, 2, 3, 4), (0.35, 0.35, 0.20, 0.10))
_IMPLICIT_SHARE = 0.2  # of clauses
_ASPECTLESS_SHARE = 0.05  # of reviews


# ------------------------------------------------------------------ vocabulary


@dataclass(frozen=True)
class Term:
    term: str
    category: str
    pool: str  # which adjectives and templates fit it
    dets: tuple[str, ...]
    plural: bool
    pos: tuple[str, ...]
    neg: tuple[str, ...]
    neutral: tuple[str, ...]


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split("|") if s.strip())


def _term(term, category, pool, dets="the", plural=False, pos="", neg="", neutral="") -> Term:
    return Term(term, category, pool, _split(dets), plural, _split(pos), _split(neg), _split(neutral))


@dataclass(frozen=True)
class Pool:
    pos: tuple[str, ...]  # adjectives that take an intensifier
    neg: tuple[str, ...]
    pos_phrase: tuple[str, ...]  # "{T} {be} <phrase>"
    neg_phrase: tuple[str, ...]
    pos_templates: tuple[str, ...] = ()  # clauses only this pool's terms fit
    neg_templates: tuple[str, ...] = ()
    neutral: tuple[str, ...] = ()


POOLS = {
    "food": Pool(
        _split("delicious|tasty|excellent|superb|fresh|flavourful|outstanding|amazing|divine|mouth-watering|well seasoned|beautifully presented|perfect|gorgeous"),
        _split("bland|overcooked|undercooked|greasy|salty|soggy|cold|stale|dry|tasteless|burnt|rubbery|disappointing|mediocre|lukewarm|oily"),
        _split("cooked to perfection|to die for|a real treat|worth the trip alone|the best in town|spot on"),
        _split("a total letdown|inedible|nothing special|swimming in oil|a sad sight|barely edible"),
        _split("you have to try {T}|I would go back just for {T}|I still dream about {T}|we ordered {T} twice"),
        _split("I would skip {T}|I sent back {T}|we left most of {T}|I would not order {T} again"),
        _split("we ordered {T}|I had {T}|my partner went for {T}|we shared {T}|{T} came out after about twenty minutes|"
               "{T} {be} on the specials board|{T} {be} served on a wooden board|we tried {T} for the first time|"
               "I asked whether {T} contained nuts|{T} {be} a seasonal special"),
    ),
    "staff": Pool(
        _split("friendly|attentive|helpful|polite|welcoming|professional|efficient|knowledgeable|warm|charming|patient|cheerful"),
        _split("rude|slow|inattentive|unfriendly|dismissive|disorganised|clueless|careless|arrogant|grumpy|pushy|absent"),
        _split("second to none|a delight|on the ball|a real pro|lovely to deal with"),
        _split("a nightmare|nowhere to be seen|totally overwhelmed|in a hurry to get rid of us"),
        _split("{T} went above and beyond|{T} made us feel welcome|{T} remembered our names|{T} looked after us brilliantly|{T} gave great recommendations"),
        _split("{T} ignored us for twenty minutes|{T} got our order wrong|{T} rolled their eyes at us|{T} forgot our drinks|{T} rushed us out"),
        _split("{T} took our order|{T} brought us water|{T} asked about allergies|{T} {be} new, apparently|{T} spoke to us in Italian|"
               "{T} changed halfway through the evening|{T} showed us to our seats"),
    ),
    "service": Pool(
        _split("quick|fast|efficient|friendly|attentive|excellent|smooth|flawless|prompt|impeccable"),
        _split("slow|sloppy|chaotic|poor|patchy|inconsistent|painfully slow|disorganised|careless|terrible"),
        _split("second to none|top notch|like clockwork|a cut above"),
        _split("a shambles|all over the place|a joke|nowhere near good enough"),
        (),
        (),
        _split("{T} {be} different from last time|{T} {be} handled by two people that night"),
    ),
    "ambience": Pool(
        _split("cosy|charming|lovely|relaxing|beautiful|stylish|elegant|inviting|romantic|pleasant|bright|calm|intimate|gorgeous"),
        _split("cramped|noisy|dark|dingy|tacky|cold|stuffy|dull|loud|dirty|uncomfortable|shabby|sterile|draughty"),
        _split("a great spot for a date|straight out of a magazine|the perfect setting|full of character"),
        _split("in need of a makeover|a bit of a mess|like a waiting room|far from inviting"),
        _split("we loved the feel of {T}|{T} made the evening|{T} set the mood perfectly"),
        _split("{T} ruined the evening|{T} made it hard to relax|we could not get out of {T} fast enough"),
        _split("{T} {be} upstairs|{T} {has} not changed in years|{T} {be} being redone next month|{T} {be} exactly as in the photos|"
               "{T} {be} open until late"),
    ),
    "price": Pool(
        _split("reasonable|fair|affordable|modest|decent|honest|sensible|competitive|low"),
        _split("steep|outrageous|excessive|ridiculous|inflated|too high|eye-watering|absurd|hard to justify"),
        _split("a steal|money well spent|a bargain|hard to beat"),
        _split("a rip-off|daylight robbery|a bad joke|not worth it"),
        (),
        _split("{T} made me wince|{T} {be} a shock|{T} took the shine off the evening"),
        _split("{T} {be} in line with other places nearby|{T} {be} listed on the website|{T} {be} about what we expected|"
               "{T} {has} gone up a little since last year"),
    ),
    "delivery": Pool(
        _split("excellent|great|fast|reliable|smooth|quick|impressive|efficient|flawless|spot on"),
        _split("terrible|slow|unreliable|disappointing|awful|poor|sloppy|frustrating|useless|patchy"),
        _split("faster than promised|a pleasure|exactly as promised|faultless"),
        _split("a nightmare|a joke|nowhere near the estimate|a total shambles"),
        _split("{T} made ordering in a pleasure|{T} never lets us down"),
        _split("{T} let us down again|{T} ruined our night in"),
        _split("{T} {be} handled by a partner company|{T} {has} changed since the last update"),
    ),
    "hardware": Pool(
        _split("excellent|great|impressive|solid|reliable|fantastic|superb|decent|outstanding"),
        _split("disappointing|poor|mediocre|terrible|awful|flimsy|cheap|unreliable|underwhelming"),
        _split("a joy to use|better than expected|the best I have had on a laptop|built to last"),
        _split("a dealbreaker|a constant annoyance|a step backwards|not fit for purpose"),
        _split("I am really happy with {T}|{T} works like a charm|{T} {be} a big upgrade over my old laptop"),
        _split("{T} stopped working after a month|{T} drives me crazy|I had to replace {T} twice"),
        _split("{T} {be} the same as on the previous model|I have not used {T} much yet|{T} {be} the standard one|"
               "I upgraded {T} myself|{T} {be} made by another manufacturer"),
    ),
    "software": Pool(
        _split("stable|intuitive|smooth|fast|reliable|clean|polished|easy to use"),
        _split("buggy|unstable|slow|annoying|bloated|confusing|clunky|intrusive|outdated"),
        _split("a pleasure to use|rock solid|better than on my old laptop"),
        _split("a constant headache|a mess|full of bugs|a step backwards"),
        _split("{T} just works|{T} runs without a hitch"),
        _split("{T} keeps crashing|{T} slows everything down|I had to reinstall {T} twice"),
        _split("I updated {T} last week|{T} came preinstalled|{T} {be} the latest version|I have not touched {T} yet"),
    ),
    "laptop_price": Pool(
        _split("reasonable|fair|affordable|competitive|low|decent|sensible"),
        _split("steep|excessive|inflated|too high|ridiculous|hard to justify"),
        _split("a steal|a bargain|hard to beat|money well spent"),
        _split("a rip-off|not worth it|daylight robbery"),
        (),
        (),
        _split("{T} {be} similar to other models|{T} {be} listed on the website|{T} dropped after a month"),
    ),
    "support": Pool(
        _split("helpful|responsive|friendly|quick|knowledgeable|excellent|patient"),
        _split("unhelpful|slow|useless|rude|clueless|unreachable|terrible"),
        _split("second to none|a pleasant surprise|on the ball"),
        _split("a nightmare|a joke|impossible to reach"),
        _split("{T} sorted out my problem in a day|{T} replaced the part without any fuss"),
        _split("{T} kept me on hold for an hour|{T} never got back to me|{T} blamed me for the fault"),
        _split("I contacted {T} by email|{T} {be} handled by a third party|{T} asked for my serial number"),
    ),
}

_FOOD = [
    _term("pasta", "food", "food", "the|my|their", pos="al dente|homemade", neg="overcooked|soggy|gluey"),
    _term("steak", "food", "food", "the|my|their", pos="juicy|tender|perfectly seared", neg="chewy|tough|overdone"),
    _term("pizza", "food", "food", "the|our|their", pos="crispy|authentic", neg="doughy|burnt|soggy"),
    _term("sushi", "food", "food", "the|their", pos="fresh|melt-in-your-mouth", neg="fishy|warm"),
    _term("risotto", "food", "food", "the|my", pos="creamy|rich", neg="stodgy|gluey"),
    _term("burger", "food", "food", "the|my|their", pos="juicy|huge", neg="dry|tiny"),
    _term("fries", "food", "food", "the|their", True, pos="crispy|golden", neg="limp|soggy"),
    _term("salad", "food", "food", "the|my", pos="crunchy|fresh", neg="wilted|limp"),
    _term("soup", "food", "food", "the|my", pos="hearty|rich", neg="watery|lukewarm"),
    _term("bread", "food", "food", "the|their", pos="warm|homemade", neg="stale|hard"),
    _term("tiramisu", "food", "food", "the|their", pos="light|heavenly", neg="soggy|too sweet"),
    _term("desserts", "food", "food", "the|their", True, pos="heavenly|decadent", neg="too sweet|forgettable"),
    _term("wine list", "food", "food", "the|their", pos="extensive|well chosen", neg="limited|short"),
    _term("wine", "food", "food", "the|our|the house", pos="smooth|lovely", neg="sour|corked"),
    _term("cocktails", "food", "food", "the|their", True, pos="creative|strong", neg="watered-down|too sweet"),
    _term("coffee", "food", "food", "the|their", pos="strong|rich", neg="weak|bitter"),
    _term("fish tacos", "food", "food", "the|their", True, pos="zesty|fresh", neg="soggy|bland"),
    _term("ramen", "food", "food", "the|their", pos="rich|comforting", neg="salty|watery"),
    _term("curry", "food", "food", "the|their|my", pos="fragrant|spicy", neg="watery|too spicy"),
    _term("lamb", "food", "food", "the", pos="tender|succulent", neg="fatty|tough"),
    _term("salmon", "food", "food", "the|my", pos="perfectly cooked|moist", neg="dry|overcooked"),
    _term("calamari", "food", "food", "the|their", pos="crispy|tender", neg="rubbery|chewy"),
    _term("dumplings", "food", "food", "the|their", True, pos="juicy|delicate", neg="doughy|gummy"),
    _term("portions", "food", "food", "the|their", True, pos="generous|huge", neg="tiny|stingy"),
    _term("menu", "food", "food", "the|their", pos="varied|creative", neg="limited|confusing"),
    _term("starters", "food", "food", "the|our", True, pos="inventive|fresh", neg="forgettable|tired"),
    _term("pancakes", "food", "food", "the|their", True, pos="fluffy|light", neg="rubbery|dense"),
    _term("seafood", "food", "food", "the|their", pos="fresh|plentiful", neg="fishy|overcooked"),
    _term("chicken wings", "food", "food", "the|their", True, pos="crispy|sticky", neg="dry|greasy"),
    _term("crème brûlée", "food", "food", "the|their", pos="silky|perfect", neg="grainy|runny"),
    _term("gnocchi", "food", "food", "the|their", True, pos="pillowy|light", neg="heavy|gluey"),
    _term("lasagna", "food", "food", "the|their", pos="rich|cheesy", neg="dry|reheated"),
    _term("paella", "food", "food", "the|their", pos="authentic|saffron-rich", neg="mushy|bland"),
    _term("noodles", "food", "food", "the|their", True, pos="springy|fresh", neg="mushy|clumped"),
    _term("jalapeño poppers", "food", "food", "the|their", True, pos="crispy|addictive", neg="greasy|burnt"),
    _term("cheesecake", "food", "food", "the|their", pos="creamy|light", neg="dense|too sweet"),
    _term("food", "food", "food", "the|their", pos="excellent", neg="mediocre"),
]
_DELIVERY_FOOD = [
    _term("pad thai", "food", "food", "the|my", pos="fresh|zingy", neg="clumped|soggy"),
    _term("kebab", "food", "food", "the|my", pos="juicy|huge", neg="dry|greasy"),
    _term("poke bowl", "food", "food", "the|my", pos="fresh|colourful", neg="warm|sad"),
]
_STAFF = [
    _term("waiter", "service", "staff", "our|the"),
    _term("waitress", "service", "staff", "our|the"),
    _term("staff", "service", "staff", "the|all the", True),
    _term("host", "service", "staff", "the"),
    _term("hostess", "service", "staff", "the"),
    _term("manager", "service", "staff", "the"),
    _term("bartender", "service", "staff", "the|our"),
    _term("server", "service", "staff", "our|the"),
    _term("sommelier", "service", "staff", "the"),
    _term("kitchen staff", "service", "staff", "the", True),
]
_SERVICE = [
    _term("service", "service", "service", "the|their"),
    _term("reservation", "service", "service", "our|the", neutral="{T} {be} for eight o'clock|we made {T} by phone"),
    _term("table service", "service", "service", "the"),
    _term("wait", "service", "service", "the", pos="short", neg="long|endless"),
]
_AMBIENCE = [
    _term("terrace", "ambience", "ambience", "the|their", pos="sunny|leafy", neg="windy|cramped"),
    _term("decor", "ambience", "ambience", "the|their", pos="tasteful|quirky", neg="dated|tacky"),
    _term("music", "ambience", "ambience", "the|their|the background", pos="well chosen|mellow", neg="too loud|deafening|awful"),
    _term("atmosphere", "ambience", "ambience", "the"),
    _term("ambience", "ambience", "ambience", "the"),
    _term("patio", "ambience", "ambience", "the|their", pos="sunny|peaceful", neg="noisy|bare"),
    _term("dining room", "ambience", "ambience", "the|their", pos="airy|elegant", neg="crowded|gloomy"),
    _term("interior", "ambience", "ambience", "the|their", pos="modern|warm", neg="dated|gloomy"),
    _term("lighting", "ambience", "ambience", "the", pos="soft|warm", neg="harsh|too dim"),
    _term("seating", "ambience", "ambience", "the", pos="comfortable|spacious", neg="uncomfortable|cramped"),
    _term("view", "ambience", "ambience", "the", pos="stunning|breathtaking", neg="disappointing|blocked"),
    _term("garden", "ambience", "ambience", "the|their", pos="peaceful|leafy", neg="overgrown|bare"),
    _term("bar area", "ambience", "ambience", "the", pos="lively|buzzy", neg="crowded|sticky"),
    _term("bathrooms", "ambience", "ambience", "the", True, pos="spotless|clean", neg="filthy|tiny"),
    _term("rooftop", "ambience", "ambience", "the|their", pos="magical|stunning", neg="freezing|windy"),
]
_PRICE = [
    _term("prices", "price", "price", "the|their", True),
    _term("bill", "price", "price", "the|our", neutral="{T} came to {amount} for two|we split {T}|{T} included the tip"),
    _term("check", "price", "price", "the|our", neutral="{T} came to {amount} for two|we split {T}"),
    _term("price", "price", "price", "the"),
    _term("cost", "price", "price", "the"),
    _term("wine prices", "price", "price", "the", True),
]
_DELIVERY_SERVICE = [
    _term("courier", "service", "delivery", "the|our", pos="friendly|polite|careful|punctual", neg="rude|careless|lost",
          neutral="{T} called when he arrived|{T} left the bag at the door"),
    _term("driver", "service", "delivery", "the|our", pos="friendly|polite|careful", neg="rude|careless|lost",
          neutral="{T} called when she arrived|{T} left the bag at the door"),
    _term("rider", "service", "delivery", "the|our", pos="friendly|quick|careful", neg="rude|careless|lost",
          neutral="{T} rang the bell twice"),
    _term("delivery", "service", "delivery", "the", neutral="{T} came in two bags|{T} {be} contactless"),
    _term("delivery time", "service", "delivery", "the", pos="short|quick", neg="long|ridiculous",
          neutral="{T} {be} estimated at forty minutes"),
    _term("packaging", "service", "delivery", "the|their", pos="neat|sturdy|eco-friendly|spill-proof", neg="flimsy|leaky|torn",
          neutral="{T} {be} mostly cardboard|{T} {be} paper-based"),
    _term("app", "service", "delivery", "the|their", pos="easy to use|intuitive|slick", neg="buggy|confusing|clunky",
          neutral="I used {T} to pay|{T} asked me to update first"),
    _term("order tracking", "service", "delivery", "the", pos="accurate|handy", neg="inaccurate|useless",
          neutral="{T} showed our order moving on a map"),
    _term("customer support", "service", "delivery", "the|their", pos="helpful|responsive", neg="unhelpful|useless",
          neutral="I contacted {T} through the chat"),
]
_DELIVERY_PRICE = [
    _term("delivery fee", "price", "price", "the", neutral="{T} {be} shown before you pay|{T} {be} waived on weekdays"),
    _term("prices", "price", "price", "the|their", True),
    _term("service charge", "price", "price", "the"),
]
_LAPTOP = [
    _term("battery life", "hardware", "hardware", "the", pos="long|excellent|impressive", neg="short|poor|pathetic"),
    _term("battery", "hardware", "hardware", "the", pos="long-lasting|strong", neg="weak|short-lived"),
    _term("screen", "hardware", "hardware", "the", pos="bright|crisp|sharp|vivid", neg="dim|glossy|washed out"),
    _term("display", "hardware", "hardware", "the", pos="bright|crisp|gorgeous", neg="dim|grainy|washed out"),
    _term("keyboard", "hardware", "hardware", "the", pos="comfortable|responsive|quiet", neg="mushy|cramped|stiff"),
    _term("trackpad", "hardware", "hardware", "the", pos="smooth|precise|responsive", neg="jumpy|unresponsive|tiny"),
    _term("touchpad", "hardware", "hardware", "the", pos="smooth|precise", neg="jumpy|unresponsive"),
    _term("fans", "hardware", "hardware", "the", True, pos="quiet|silent", neg="loud|noisy|whiny"),
    _term("speakers", "hardware", "hardware", "the", True, pos="loud|clear", neg="tinny|weak"),
    _term("webcam", "hardware", "hardware", "the", pos="sharp|clear", neg="grainy|blurry"),
    _term("charger", "hardware", "hardware", "the", pos="compact|light", neg="bulky|flimsy"),
    _term("hinge", "hardware", "hardware", "the", pos="sturdy|smooth", neg="wobbly|loose"),
    _term("ports", "hardware", "hardware", "the", True, pos="plentiful|well placed", neg="limited|awkwardly placed"),
    _term("build quality", "hardware", "hardware", "the", pos="solid|premium", neg="cheap|flimsy"),
    _term("processor", "hardware", "hardware", "the", pos="fast|powerful", neg="slow|sluggish"),
    _term("graphics card", "hardware", "hardware", "the", pos="powerful|capable", neg="weak|underpowered"),
    _term("SSD", "hardware", "hardware", "the", pos="fast|roomy", neg="slow|small"),
    _term("RAM", "hardware", "hardware", "the", pos="ample|generous", neg="insufficient|too little"),
    _term("operating system", "software", "software", "the"),
    _term("Windows 11", "software", "software", "the preinstalled|the"),
    _term("drivers", "software", "software", "the", True, pos="up to date", neg="outdated|broken"),
    _term("preinstalled software", "software", "software", "the"),
    _term("BIOS update", "software", "software", "the|the latest", pos="painless", neg="painful|broken"),
    _term("price", "price", "laptop_price", "the"),
    _term("price tag", "price", "laptop_price", "the"),
    _term("support", "service", "support", "the|their"),
    _term("tech support", "service", "support", "the|their"),
    _term("customer service", "service", "support", "the|their"),
    _term("warranty", "service", "support", "the", pos="generous|hassle-free", neg="useless|short"),
]

_DELIVERY_MENU = {"pasta", "pizza", "sushi", "burger", "fries", "salad", "soup", "curry", "ramen", "fish tacos", "dumplings",
                  "noodles", "chicken wings", "lasagna", "desserts", "cheesecake", "portions", "food", "menu"}


def _by_category(terms: list[Term]) -> dict[str, list[Term]]:
    grouped: dict[str, list[Term]] = {}
    for t in terms:
        grouped.setdefault(t.category, []).append(t)
    return grouped


_LAPTOP_TERMS = _by_category(_LAPTOP)
# topic kind -> category -> (weight of explicit terms of that category, the terms)
_TERMS = {
    "dine_in": {"food": (0.45, _FOOD), "service": (0.25, _STAFF + _SERVICE), "ambience": (0.15, _AMBIENCE), "price": (0.15, _PRICE)},
    "delivery": {
        "food": (0.45, [t for t in _FOOD if t.term in _DELIVERY_MENU] + _DELIVERY_FOOD),
        "service": (0.40, _DELIVERY_SERVICE),
        "price": (0.15, _DELIVERY_PRICE),
    },
    "laptops": {c: (w, _LAPTOP_TERMS[c]) for c, w in (("hardware", 0.65), ("software", 0.15), ("price", 0.10), ("service", 0.10))},
}
_RESTAURANT_POOLS = {"food", "staff", "service", "ambience", "price", "delivery"}

# Implicit aspects: (category, polarity) -> sentences, per topic kind ("restaurants": both products).
_IMPLICIT = {
    "restaurants": {
        ("food", "positive"): "Everything we ate was delicious.|Every dish was a winner.|Best meal I have had in months.|Each plate was beautifully presented.",
        ("food", "negative"): "Everything tasted bland.|Nothing we ordered was worth finishing.|It all tasted reheated.|Everything was swimming in oil.",
        ("food", "neutral"): "We shared a few plates.|We both went for the vegetarian option.",
        ("food", "conflict"): "Some dishes were great, others were barely edible.",
        ("price", "positive"): "Very affordable.|Cheap and cheerful.|Great bang for the buck.|You get a lot for your money.",
        ("price", "negative"): "Way too expensive.|Overpriced for what you get.|Not worth the money.|We paid a fortune.",
        ("price", "neutral"): "We paid around €30 each.|We paid about the same as last time.",
        ("price", "conflict"): "Pricey, but worth it.",
        ("anecdotes/miscellaneous", "positive"): "We will definitely be back.|Highly recommended!|Would recommend to anyone.|A real gem.",
        ("anecdotes/miscellaneous", "negative"): "Never again.|I would not recommend it.|Avoid.|Such a disappointment overall.",
        ("anecdotes/miscellaneous", "conflict"): "Good in parts, bad in others.|A bit of a mixed bag.",
    },
    "dine_in": {
        ("service", "positive"): "They made us feel at home.|Nothing was too much trouble for them.|We were seated right away.|They even remembered our names.",
        ("service", "negative"): "We waited forever.|Nobody came to take our order for half an hour.|We had to ask three times for water.|They forgot our drinks twice.",
        ("service", "neutral"): "We ordered at the counter.|They took our coats at the door.",
        ("service", "conflict"): "They were friendly but painfully slow.",
        ("ambience", "positive"): "Very romantic spot.|Such a cosy little spot to spend an evening.|Perfect for a quiet date night.",
        ("ambience", "negative"): "It was so loud we could not hear each other.|Far too cramped in there.|It felt like eating in a corridor.",
        ("ambience", "neutral"): "It is in the basement of an old building.",
        ("ambience", "conflict"): "Pretty inside, but freezing cold.",
        ("anecdotes/miscellaneous", "negative"): "What a waste of an evening.",
    },
    "delivery": {
        ("food", "positive"): "Everything arrived hot and tasted great.",
        ("food", "negative"): "Everything arrived cold and soggy.",
        ("service", "positive"): "It arrived twenty minutes early.|Arrived faster than promised.|Our order showed up in no time.",
        ("service", "negative"): "It took over an hour to arrive.|Half of our order was missing.|They brought someone else's order.|We got the wrong order.",
        ("service", "neutral"): "We picked the contactless option at checkout.",
        ("service", "conflict"): "It arrived quickly but someone had clearly dropped it.",
        ("anecdotes/miscellaneous", "positive"): "Will order again.|My new go-to for a night in.",
        ("anecdotes/miscellaneous", "negative"): "Won't be ordering from them again.",
    },
    "laptops": {
        ("hardware", "positive"): "This laptop is light enough to carry all day.|The laptop runs everything I throw at it.|This notebook feels rock solid.",
        ("hardware", "negative"): "The laptop overheats constantly.|This laptop feels cheap and plasticky.|The notebook gets painfully hot on my lap.",
        ("hardware", "neutral"): "The laptop weighs about two kilos.|This laptop comes in silver or grey.",
        ("software", "positive"): "The laptop boots in seconds.|This laptop has never crashed on me.",
        ("software", "negative"): "This laptop crashes every few hours.|The laptop freezes when waking from sleep.",
        ("software", "neutral"): "The laptop came with Linux installed.",
        ("price", "positive"): "This laptop is worth every penny.|A lot of laptop for the money.",
        ("price", "negative"): "Way overpriced for a laptop with these specs.",
        ("price", "neutral"): "I paid around €900 for this laptop.",
        ("service", "positive"): "They replaced my faulty laptop within two days.",
        ("service", "negative"): "Sending the laptop in for repair took six weeks.",
        ("anecdotes/miscellaneous", "positive"): "Best laptop I have ever owned.|I would buy this laptop again.",
        ("anecdotes/miscellaneous", "negative"): "I regret buying this laptop.|Do not buy this laptop.",
        ("anecdotes/miscellaneous", "conflict"): "A good laptop with a few annoying flaws.",
    },
}
_IMPLICIT = {kind: {k: _split(v) for k, v in table.items()} for kind, table in _IMPLICIT.items()}

# Reviews about no aspect at all.
_ASPECTLESS = {
    "restaurants": _split(
        "My cousin suggested it.|This was our second time.|I live just around the corner.|It was raining that evening.|"
        "It was my sister's birthday.|We found it on a map."
    ),
    "dine_in": _split(
        "We came here on a Tuesday.|We were a group of six.|It was my first visit.|We went after a concert.|"
        "We stopped by on our way home.|I came with two colleagues from work."
    ),
    "delivery": _split(
        "We ordered on a Friday night.|Ordered for a movie night at home.|My order was for four people.|"
        "First time ordering from here.|We ordered while watching the match."
    ),
    "laptops": _split(
        "I bought this laptop for university.|I have had this laptop for about a month.|This is my second laptop from this brand.|"
        "I use the laptop mostly for email.|Got this notebook as a gift.|I switched to this laptop from a desktop."
    ),
}

_GENERAL = {
    "positive": _split(
        "{T} {be} {int}{pos}|{T} {be} {int}{pos}|{T} {be} {pos_phrase}|{T} {be} {pos} and {pos2}|I loved {T}|I really enjoyed {T}|"
        "we were impressed by {T}|I couldn't fault {T}|{T} {be} not bad at all|{T} never disappoint{s}|{T} deserve{s} a special mention|"
        "{T} {be} {int}{pos}, honestly|{T} {be} as {pos} as ever|nothing but praise for {T}|{T} {be} {pos}, no complaints there|"
        "{T} really stood out|{T} {be} the highlight|{T} {be} {pos} as always|{T} {be} {int}{pos}!"
    ),
    "negative": _split(
        "{T} {be} {nint}{neg}|{T} {be} {nint}{neg}|{T} {be} {neg_phrase}|{T} {be} {neg} and {neg2}|{T} {be} not great|{T} {be} not {pos}|"
        "{T} {be} anything but {pos}|{T} {be} nowhere near as {pos} as last time|I was disappointed by {T}|{T} left a lot to be desired|"
        "{T} could have been better|{T} {be} far from {pos}|we didn't enjoy {T}|{T} {be} {neg}, to be honest|{T} {be} the weak point|"
        "{T} {be} {nint}{neg}, sadly|{T} {be} not exactly {pos}"
    ),
    "neutral": _split("{T} {has} changed since our last visit|{T} {be} about what you would expect"),
    "conflict": _split(
        "{T} {be} {pos} but {neg}|{T} {be} {pos}, though a bit {neg}|{T} {be} {neg} but {pos}|{T} {be} {pos} at first, then {neg}|"
        "I have mixed feelings about {T}|{T} {be} hit and miss|{T} {be} {int}{pos}, if a little {neg}"
    ),
}
_INTENSIFIERS = ("", "", "", "very ", "really ", "incredibly ", "absolutely ", "so ", "truly ", "extremely ", "super ", "genuinely ")
_NEG_INTENSIFIERS = ("", "", "very ", "really ", "a bit ", "rather ", "far too ", "so ", "incredibly ", "slightly ", "quite ", "terribly ")
_TOO_INTENSIFIERS = ("", "", "a bit ", "slightly ", "way ", "much ", "a little ")
_NOT_GRADABLE = {"melt-in-your-mouth", "all-day", "spill-proof", "saffron-rich", "watered-down", "perfect", "homemade", "flawless",
                 "faultless", "inedible", "divine", "authentic", "absent", "useless", "impeccable", "contactless"}
_AMOUNTS = ("€40", "€65", "about €90", "around 50 euros", "£55", "roughly $80")
_CONNECTORS = (" and ", ", but ", ". Also, ", ", and ", ". ", "; ", ", while ", ". On the other hand, ", ", although ")


# ------------------------------------------------------------------ generator


@dataclass(frozen=True)
class ReviewsDrift:
    """A share of the new reviews changes: ``laptops`` (laptop reviews instead of restaurant
    ones: a topic shift) or ``delivery`` (delivery reviews only: a product-mix shift)."""

    topic: str
    share: float = 1.0

    def __post_init__(self):
        if self.topic not in TOPICS:
            raise ValueError(f"--drift: unknown topic {self.topic!r}; use topic={' or topic='.join(TOPICS)}")
        if not (0.0 < self.share <= 1.0):
            raise ValueError(f"--drift: share must be in (0, 1] (got {self.share})")

    @classmethod
    def parse(cls, text: str) -> "ReviewsDrift | None":
        """``topic=laptops[,share=0.8]`` -> ReviewsDrift; empty -> None."""
        if not text.strip():
            return None
        values: dict[str, str] = {}
        for part in text.split(","):
            name, _, value = (s.strip() for s in part.partition("="))
            if name not in ("topic", "share") or not value or name in values:
                raise ValueError(f"--drift: cannot read {part!r}; use topic=laptops or topic=delivery, optionally with share=0..1")
            values[name] = value
        if "topic" not in values:
            raise ValueError(f"--drift: {text!r} names no topic; use topic=laptops or topic=delivery")
        share = 1.0
        if "share" in values:
            try:
                share = float(values["share"])
            except ValueError:
                raise ValueError(f"--drift: share={values['share']!r} is not a number (e.g. share=0.8)") from None
        return cls(values["topic"], share)

    def __str__(self) -> str:
        return f"topic={self.topic},share={self.share:g}"


def generate_reviews(
    n: int,
    *,
    seed: int | Sequence[int],
    start,
    end,
    products: Mapping[str, float] = PRODUCT_MIX,
    topic: str | None = None,
    share: float = 1.0,
    id_format: str = "R{:06d}",
    first_id: int = 1,
) -> pd.DataFrame:
    """``n`` reviews created in [start, end) UTC, sorted by time, as a frame: review_id,
    created_at (UTC), product, text, aspect_terms and aspect_categories (lists of dicts),
    topic (``restaurants`` or ``laptops``: what the text is about).

    ``products``: product -> weight (dine_in, delivery). ``topic``: None, ``laptops`` or
    ``delivery`` (see ``ReviewsDrift``), applied to a ``share`` of the reviews. Same
    arguments, same frame."""
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    if topic is not None:
        ReviewsDrift(topic, share)  # validates
    unknown = [p for p in products if p not in PRODUCTS]
    if unknown or not products or any(w < 0 for w in products.values()) or sum(products.values()) <= 0:
        raise ValueError(f"products must weigh {' and/or '.join(PRODUCTS)} with weights >= 0 (got {dict(products)})")
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    seconds = int((end - start).total_seconds())
    if seconds <= 0:
        raise ValueError(f"end {end} must be after start {start}")
    rng = np.random.default_rng(seed)
    names = list(products)
    weights = np.array([products[p] for p in names], dtype=float)
    offsets = np.sort(rng.integers(0, seconds, n))
    product = [names[i] for i in rng.choice(len(names), size=n, p=weights / weights.sum())]
    drifted = rng.random(n) < share if topic else np.zeros(n, bool)
    rows = []
    for i in range(n):
        if drifted[i] and topic == "delivery":
            product[i] = "delivery"
        kind = "laptops" if drifted[i] and topic == "laptops" else product[i]
        text, terms, categories = _review(rng, kind)
        rows.append((text, terms, categories, "laptops" if kind == "laptops" else "restaurants"))
    frame = pd.DataFrame(
        {
            "review_id": [id_format.format(first_id + i) for i in range(n)],
            "created_at": start + pd.to_timedelta(offsets, unit="s"),
            "product": product,
            "text": [r[0] for r in rows],
            "aspect_terms": [r[1] for r in rows],
            "aspect_categories": [r[2] for r in rows],
            "topic": [r[3] for r in rows],
        }
    )
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _gradable(adjective: str) -> bool:
    """Whether an intensifier ("very", "far too") fits before it: one plain word, or "too X"."""
    return adjective.startswith("too ") or (" " not in adjective and adjective not in _NOT_GRADABLE)


def _review(rng: np.random.Generator, kind: str) -> tuple[str, list[dict], list[dict]]:
    """One review of ``kind`` (dine_in, delivery, laptops): its text and SemEval labels."""
    if rng.random() < _ASPECTLESS_SHARE:
        pool = _ASPECTLESS["laptops"] if kind == "laptops" else _ASPECTLESS["restaurants"] + _ASPECTLESS[kind]
        count = 1 + int(rng.random() < 0.3)
        picked = rng.choice(len(pool), size=count, replace=False)
        return " ".join(pool[int(i)] for i in picked), [], []
    clauses = int(rng.choice(_CLAUSE_COUNTS[0], p=_CLAUSE_COUNTS[1]))
    used_terms: set[str] = set()
    used_sentences: set[str] = set()
    parts: list[tuple[str, bool]] = []  # (text, implicit: a whole sentence)
    terms: list[dict] = []
    mentions: list[tuple[str, str]] = []  # (category, polarity) in order
    for _ in range(clauses):
        polarity = POLARITIES[int(rng.choice(4, p=_POLARITY_MIX))]
        implicit = _implicit_options(kind, polarity)
        if implicit and rng.random() < _IMPLICIT_SHARE:
            category, sentence = implicit[int(rng.integers(len(implicit)))]
            if sentence not in used_sentences:
                used_sentences.add(sentence)
                parts.append((sentence, True))
                mentions.append((category, polarity))
                continue
        term = _pick_term(rng, kind, used_terms)
        used_terms.add(term.term)
        parts.append((_clause(rng, term, polarity), False))
        terms.append({"term": term.term, "polarity": polarity})
        mentions.append((term.category, polarity))
    return _join(rng, parts), terms, _categories(mentions)


def _implicit_options(kind: str, polarity: str) -> list[tuple[str, str]]:
    tables = [_IMPLICIT["laptops"]] if kind == "laptops" else [_IMPLICIT["restaurants"], _IMPLICIT[kind]]
    return [(cat, s) for table in tables for (cat, pol), sentences in table.items() if pol == polarity for s in sentences]


def _pick_term(rng: np.random.Generator, kind: str, used: set[str]) -> Term:
    table = _TERMS[kind]
    categories = list(table)
    weights = np.array([table[c][0] for c in categories])
    for _ in range(20):
        category = categories[int(rng.choice(len(categories), p=weights / weights.sum()))]
        term = _pick(rng, table[category][1])
        if term.term not in used:
            return term
    return term  # a term twice in one long review: rare, and still labelled per mention


def _clause(rng: np.random.Generator, term: Term, polarity: str) -> str:
    pool = POOLS[term.pool]
    if polarity == "positive":
        templates = _GENERAL["positive"] + pool.pos_templates
    elif polarity == "negative":
        templates = _GENERAL["negative"] + pool.neg_templates
    elif polarity == "neutral":
        templates = term.neutral + pool.neutral + (_GENERAL["neutral"] if term.pool in _RESTAURANT_POOLS else ())
    else:
        templates = _GENERAL["conflict"]
    template = _pick(rng, templates)
    det = _pick(rng, term.dets)

    def adjective(own: tuple[str, ...], common: tuple[str, ...], avoid: str = "") -> str:
        for _ in range(5):
            word = _pick(rng, own) if own and rng.random() < 0.6 else _pick(rng, common)
            if word != avoid:
                return word
        return word

    pos = adjective(term.pos, pool.pos)
    neg = adjective(term.neg, pool.neg)
    intensifier = _pick(rng, _INTENSIFIERS) if _gradable(pos) else ""
    neg_intensifier = _pick(rng, _TOO_INTENSIFIERS if neg.startswith("too ") else _NEG_INTENSIFIERS) if _gradable(neg) else ""
    values = {
        "T": f"{det} {term.term}",
        "be": "were" if term.plural else "was",
        "has": "have" if term.plural else "has",
        "s": "" if term.plural else "s",
        "int": intensifier,
        "nint": neg_intensifier,
        "pos": pos,
        "pos2": adjective(term.pos, pool.pos, avoid=pos),
        "neg": neg,
        "neg2": adjective(term.neg, pool.neg, avoid=neg),
        "pos_phrase": _pick(rng, pool.pos_phrase),
        "neg_phrase": _pick(rng, pool.neg_phrase),
        "amount": _pick(rng, _AMOUNTS),
    }
    return template.format(**values)


def _join(rng: np.random.Generator, parts: list[tuple[str, bool]]) -> str:
    """Clauses into sentences: connectors between explicit clauses, full stops around
    implicit ones (they are sentences of their own)."""
    text = ""
    for i, (part, implicit) in enumerate(parts):
        if i == 0:
            text = _capitalise(part)
        elif implicit or parts[i - 1][1]:
            text = _end(text) + " " + _capitalise(part)
        else:
            connector = _pick(rng, _CONNECTORS)
            if connector.startswith("."):
                text = text.rstrip("!") + connector + (part if connector.endswith(", ") else _capitalise(part))
            else:
                text = text.rstrip("!") + connector + part
    return _end(text, rng)


def _end(text: str, rng: np.random.Generator | None = None) -> str:
    if text.endswith((".", "!", "?")):
        return text
    return text + ("!" if rng is not None and rng.random() < 0.1 else ".")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _categories(mentions: list[tuple[str, str]]) -> list[dict]:
    """SemEval's category labels: one per category, in order of first mention; opinions
    both ways (or a conflict) make it ``conflict``, an opinion beats neutral."""
    seen: dict[str, set[str]] = {}
    for category, polarity in mentions:
        seen.setdefault(category, set()).add(polarity)
    labels = []
    for category, found in seen.items():
        if "conflict" in found or {"positive", "negative"} <= found:
            polarity = "conflict"
        elif "positive" in found:
            polarity = "positive"
        elif "negative" in found:
            polarity = "negative"
        else:
            polarity = "neutral"
        labels.append({"category": category, "polarity": polarity})
    return labels


# ------------------------------------------------------------------ raw objects


def to_csv(frame: pd.DataFrame, columns: list[str]) -> bytes:
    """A raw file: header ``columns``, RFC 4180 quoting, UTF-8, times as UTC
    ``YYYY-MM-DD HH:MM:SS``, label lists as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    times = pd.to_datetime(frame["created_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    for row, when in zip(frame.itertuples(index=False), times):
        values = row._asdict()
        values["created_at"] = when
        writer.writerow(
            json.dumps(values[c], ensure_ascii=False) if c in ("aspect_terms", "aspect_categories") else values[c] for c in columns
        )
    return out.getvalue().encode("utf-8")


def hour_key(hour: datetime) -> str:
    """The key of an hour's object, relative to the table's raw prefix."""
    hour = hour.astimezone(timezone.utc)
    return f"{hour:%Y/%m/%d/%H}/reviews-{hour:%Y-%m-%dT%H}.csv"


def hourly_frame(hour: datetime, *, seed: int, drift: ReviewsDrift | None = None) -> pd.DataFrame:
    """The reviews created in ``hour`` (20-40 of them); the same hour and seed give the same frame."""
    hour = hour.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    index = int(hour.timestamp()) // 3600
    rng = np.random.default_rng([seed, index])
    n = int(np.clip(rng.poisson(REVIEWS_PER_HOUR), 20, 40))
    return generate_reviews(
        n,
        seed=[seed, index, 1],
        start=hour,
        end=hour + timedelta(hours=1),
        topic=drift.topic if drift else None,
        share=drift.share if drift else 1.0,
        id_format=f"R{hour:%Y%m%dT%H}-{{:04d}}",
    )


def hourly_object(hour: datetime, *, seed: int, drift: ReviewsDrift | None = None) -> tuple[RawObject, int]:
    """(the raw object of ``hour``, how many reviews it holds)."""
    frame = hourly_frame(hour, seed=seed, drift=drift)
    return RawObject(hour_key(hour), to_csv(frame, HOURLY_COLUMNS)), len(frame)


def labelled_frame(i: int, *, seed: int) -> pd.DataFrame:
    """The ``i``-th labelled object's reviews (0-based): 600 created on its landing day."""
    day = datetime.combine(LABELLED_START + timedelta(days=i), datetime.min.time(), timezone.utc)
    return generate_reviews(
        LABELLED_PER_FILE,
        seed=[seed, 0, i],
        start=day,
        end=day + timedelta(days=1),
        id_format="L{:06d}",
        first_id=1 + LABELLED_PER_FILE * i,
    )


class ReviewsProducer:
    """The sample history of table ``reviews``: the 24 hourly drops of 2026-11-24."""

    def __init__(self, spec, seed: int = 42):
        self.spec, self.seed = spec, seed

    def history(self) -> list[RawObject]:
        return [hourly_object(HOURLY_START + timedelta(hours=h), seed=self.seed)[0] for h in range(HOURLY_HOURS)]


class LabelledReviewsProducer:
    """The sample history of table ``reviews_labelled``: 4 x 600 labelled reviews."""

    def __init__(self, spec, seed: int = 42):
        self.spec, self.seed = spec, seed

    def history(self) -> list[RawObject]:
        objects = []
        for i in range(LABELLED_FILES):
            landed = LABELLED_START + timedelta(days=i)
            objects.append(RawObject(f"{landed:%Y/%m/%d}/labelled-{i + 1:03d}.csv", to_csv(labelled_frame(i, seed=self.seed), LABELLED_COLUMNS)))
        return objects


_HOUR_IN_KEY = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/")


def newest_hour(lake, spec) -> datetime | None:
    """The newest ``YYYY/MM/DD/HH/`` hour among the objects under the table's raw prefix."""
    newest = None
    for info in lake.list(spec.raw_prefix):
        match = _HOUR_IN_KEY.search(info.key[len(spec.raw_prefix) :])
        if not match:
            continue
        try:
            hour = datetime(*(int(g) for g in match.groups()), tzinfo=timezone.utc)
        except ValueError:  # 2026/13/45/99: not an hour
            continue
        newest = hour if newest is None or hour > newest else newest
    return newest


def produce_reviews(
    lake, spec, *, hours: int, seed: int, drift: ReviewsDrift | None = None, log: Callable[[str], None] = print
) -> list[str]:
    """Write ``hours`` hourly objects into table ``reviews``'s raw zone, continuing after
    the newest hour there (else after the sample's last hour, 2026-11-24T23)."""
    if hours < 1:
        raise ValueError(f"--hours must be >= 1 (got {hours})")
    last = newest_hour(lake, spec) or SAMPLE_LAST_HOUR
    written = []
    for h in range(1, hours + 1):
        obj, count = hourly_object(last + timedelta(hours=h), seed=seed, drift=drift)
        key = spec.raw_prefix + obj.key
        lake.write_bytes(key, obj.data)
        written.append(key)
        log(f"wrote {lake.describe(key)} ({count} reviews" + (f", drift {drift})" if drift else ")"))
    return written
