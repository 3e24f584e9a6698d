"""Arithmetic word problems with worked solutions, for copse's bundled math tutor.

Standard library only. A problem is a short story (question) and a solution with
one step per line, each step a few words and one equation `a op b = c`, ending
with the line `The answer is N.`.

Learnability drives the design: a few-million-parameter model cannot learn
long multiplication in an hour of CPU training, so every single step is a small
fact (sums and differences of numbers up to a level's bound, products and
quotients from the times table) and a level's difficulty lies in how many steps
there are, in reading which quantities to combine (relations between people,
several purchases, distractor sentences) and in which operation the wording
asks for ("half as many", "splits equally", "fewer").

    python3 problems.py --out data            # writes data/{train,validation,test}.jsonl
"""

import argparse
import json
import os
import random
import re
from dataclasses import dataclass

# ---------------------------------------------------------------- levels


@dataclass(frozen=True)
class Level:
    steps: tuple        # (min, max) number of solution steps
    ops: str            # operations the steps may use
    num_max: int        # bound on every quantity
    table: int          # largest factor in a product / quotient
    distractors: int    # sentences with numbers the solution must not use
    far_refs: bool      # relations may refer to any earlier person, not just the previous one
    indirect: bool      # wording such as "twice", "half as many", "A has 3 times as many as B" (asked: B)


LEVELS = {
    1: Level((1, 2), "+-", 20, 5, 0, False, False),
    2: Level((2, 3), "+-*", 50, 10, 0, False, False),
    3: Level((3, 4), "+-*/", 100, 10, 0, True, False),
    4: Level((4, 5), "+-*/", 100, 10, 1, True, True),
    5: Level((7, 8), "+-*/", 999, 12, 3, True, True),
}

# ---------------------------------------------------------------- vocabulary

NAMES = [("Ava", "she"), ("Ben", "he"), ("Cara", "she"), ("Dan", "he"), ("Eva", "she"),
         ("Finn", "he"), ("Gina", "she"), ("Hugo", "he"), ("Ivy", "she"), ("Jack", "he"),
         ("Kira", "she"), ("Leo", "he"), ("Mia", "she"), ("Noah", "he"), ("Olga", "she"),
         ("Paul", "he"), ("Rosa", "she"), ("Sam", "he"), ("Tina", "she"), ("Omar", "he"),
         ("Uma", "she"), ("Victor", "he"), ("Wendy", "she"), ("Max", "he"), ("Yara", "she"),
         ("Zack", "he"), ("Lily", "she"), ("Tom", "he"), ("Nora", "she"), ("Raj", "he"),
         ("Anna", "she"), ("Carlos", "he"), ("Emma", "she"), ("Ali", "he"), ("Sofia", "she"),
         ("Ivan", "he"), ("Lucy", "she"), ("Kenji", "he"), ("Maya", "she"), ("Oscar", "he")]

ITEMS = [("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"), ("stamp", "stamps"),
         ("card", "cards"), ("pencil", "pencils"), ("book", "books"), ("shell", "shells"),
         ("coin", "coins"), ("cookie", "cookies"), ("cupcake", "cupcakes"), ("flower", "flowers"),
         ("toy car", "toy cars"), ("ribbon", "ribbons"), ("balloon", "balloons"), ("button", "buttons"),
         ("egg", "eggs"), ("orange", "oranges"), ("candle", "candles"), ("bead", "beads"),
         ("rock", "rocks"), ("feather", "feathers"), ("crayon", "crayons"), ("lemon", "lemons"),
         ("muffin", "muffins"), ("leaf", "leaves"), ("peach", "peaches"), ("comic", "comics"),
         ("seashell", "seashells"), ("plum", "plums")]

CONTAINERS = [("bag", "bags"), ("box", "boxes"), ("jar", "jars"), ("basket", "baskets"),
              ("pack", "packs"), ("tray", "trays"), ("crate", "crates"), ("bowl", "bowls")]

GOODS = [("pen", "pens"), ("notebook", "notebooks"), ("ruler", "rulers"), ("sandwich", "sandwiches"),
         ("juice box", "juice boxes"), ("ticket", "tickets"), ("toy", "toys"), ("hat", "hats"),
         ("ball", "balls"), ("kite", "kites"), ("mug", "mugs"), ("plant", "plants"),
         ("puzzle", "puzzles"), ("scarf", "scarves"), ("lamp", "lamps"), ("poster", "posters")]

SHOPS = ["the store", "the market", "a fair", "the school shop", "a yard sale", "the mall"]

WORKERS = [("baker", "bakes", ("loaf", "loaves")), ("machine", "makes", ("toy", "toys")),
           ("farmer", "picks", ("apple", "apples")), ("printer", "prints", ("page", "pages")),
           ("tailor", "sews", ("shirt", "shirts")), ("potter", "makes", ("cup", "cups")),
           ("factory", "builds", ("chair", "chairs")), ("gardener", "plants", ("tree", "trees")),
           ("chef", "cooks", ("meal", "meals")), ("robot", "paints", ("fence", "fences"))]

# a period and the spans that contain several of it ("5 hours on Monday")
PERIODS = [(("hour", "hours"), ["on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday",
                                "on Saturday", "on Sunday"]),
           (("day", "days"), ["in May", "in June", "in July", "in March", "in October"]),
           (("week", "weeks"), ["in spring", "in summer", "in autumn", "in winter"])]

# numbers a question may state in words; the grounding check accepts them
WORD_NUMBERS = {"twice": 2, "double": 2, "half": 2, "three times": 3, "third": 3, "quarter": 4}
FRACTIONS = {2: "half", 3: "a third", 4: "a quarter"}
TIMES = {2: "twice", 3: "three times"}


class Reject(Exception):
    """The random choices led to a problem that breaks the level's bounds."""


def plural(n, noun):
    return noun[0] if n == 1 else noun[1]


def are(n):
    return "is" if n == 1 else "are"


def pron(gender):
    """(subject, object, possessive) pronouns."""
    return ("she", "her", "her") if gender == "she" else ("he", "him", "his")


def cap(s):
    return s[0].upper() + s[1:]


# ---------------------------------------------------------------- problem builder


class Builder:
    """Collects sentences and steps; every step is checked against the level."""

    def __init__(self, rng, level):
        self.rng = rng
        self.lv = LEVELS[level]
        self.sents = []
        self.steps = []
        self.people = rng.sample(NAMES, 10)
        # people in distractor sentences have the other gender, so that the
        # protagonist's pronouns stay unambiguous
        self.others = [n for n, g in NAMES if g != self.people[0][1] and (n, g) not in self.people]

    # --- arithmetic within the level's bounds

    def small_product(self, a, b):
        lo, hi = sorted((a, b))
        return 2 <= lo and hi <= self.lv.table

    def fits(self, a, op, b):
        lv = self.lv
        if op not in lv.ops or a < 0 or b < 0:
            return False
        if op == "+":
            return a + b <= lv.num_max
        if op == "-":
            return a - b >= 0
        if op == "*":
            return self.small_product(a, b) and a * b <= lv.num_max
        return b >= 2 and a % b == 0 and self.small_product(a // b, b)

    def step(self, label, a, op, b):
        if not self.fits(a, op, b):
            raise Reject
        c = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op]
        self.steps.append((label, a, op, b, c))
        return c

    def addend(self, cur, lo=2):
        hi = self.lv.num_max - cur
        if hi < lo:
            raise Reject
        return self.rng.randint(lo, hi)

    def subtrahend(self, cur, lo=1):
        if cur - 1 < lo:
            raise Reject
        return self.rng.randint(lo, cur - 1)

    def factor(self, cur):
        fs = [f for f in range(2, self.lv.table + 1) if self.fits(cur, "*", f)]
        if not fs:
            raise Reject
        return self.rng.choice(fs)

    def divisor(self, cur):
        ds = [d for d in range(2, min(self.lv.table, 9) + 1) if self.fits(cur, "/", d)]
        if not ds:
            raise Reject
        return self.rng.choice(ds)

    def table_pair(self):
        t = self.lv.table
        return self.rng.randint(2, t), self.rng.randint(2, t)

    def start(self, lo=4, hi=None):
        return self.rng.randint(lo, min(hi or self.lv.num_max, self.lv.num_max))

    # --- text

    def say(self, s):
        self.sents.append(s)

    def distract(self, sentences, third=None):
        """Insert distractor sentences after the first sentence. The third is
        a function called only at levels that use it, so that lower levels
        draw the same random numbers as before it existed (their splits stay
        byte-identical)."""
        if third and self.lv.distractors > 2:
            sentences = sentences + [third()]
        for s in sentences[: self.lv.distractors]:
            self.sents.insert(self.rng.randint(1, len(self.sents)), s)

    def finish(self, question, level):
        if not self.steps:
            raise Reject
        lo, hi = self.lv.steps
        if not lo <= len(self.steps) <= hi:
            raise Reject
        ans = self.steps[-1][4]
        lines = [f"{label}: {a} {op} {b} = {c}." for label, a, op, b, c in self.steps]
        lines.append(f"The answer is {ans}.")
        return {"question": " ".join(self.sents + [question]), "solution": "\n".join(lines),
                "answer": ans, "level": level}


# ---------------------------------------------------------------- scenarios
# Each scenario writes a story whose solution has exactly k steps, or raises Reject.


def inventory(b, k, level):
    """One person's collection changes through a sequence of events."""
    rng = b.rng
    name, g = b.people[0]
    friend = b.people[1][0]
    subj, obj, pos = pron(g)
    item = rng.choice(ITEMS)
    box = rng.choice(CONTAINERS)
    cur = b.start(4, 30)
    b.say(rng.choice([f"{name} has {cur} {plural(cur, item)}.",
                      f"{name} starts the day with {cur} {plural(cur, item)}.",
                      f"There are {cur} {plural(cur, item)} in {name}'s room."]))
    while len(b.steps) < k:
        left = k - len(b.steps)
        kinds = ["gain", "lose", "lose"]
        if left >= 2:
            kinds += ["buy_packs", "give_packs", "split_give"]
        if "/" in b.lv.ops:
            kinds += ["split_keep"]
        if b.lv.indirect:
            kinds += ["half", "times"]
        kind = rng.choice(kinds)
        if kind == "gain":
            x = b.addend(cur)
            s, label = rng.choice([
                (f"{cap(subj)} finds {x} more.", "After finding more"),
                (f"{friend} gives {obj} {x} {plural(x, item)}.", f"After {friend}'s gift"),
                (f"Then {subj} buys {x} more {item[1]}.", "After buying more"),
                (f"{cap(pos)} aunt sends {obj} {x} {plural(x, item)}.", "After the aunt's present"),
                (f"{cap(subj)} wins {x} {plural(x, item)} in a game.", "After winning some")])
            b.say(s)
            cur = b.step(label, cur, "+", x)
        elif kind == "lose":
            x = b.subtrahend(cur, 2)
            s, label = rng.choice([
                (f"{cap(subj)} gives {x} to {friend}.", f"After giving some to {friend}"),
                (f"{cap(subj)} loses {x} of them.", "After losing some"),
                (f"{cap(subj)} sells {x} {plural(x, item)}.", "After selling some"),
                (f"{cap(subj)} uses {x} {plural(x, item)} for a school project.", "After the project"),
                (f"{friend} borrows {x} {plural(x, item)} from {obj}.", f"After {friend} borrows some")])
            b.say(s)
            cur = b.step(label, cur, "-", x)
        elif kind in ("buy_packs", "give_packs"):
            n, m = b.table_pair()
            if kind == "buy_packs":
                b.say(rng.choice([
                    f"{cap(subj)} buys {n} {plural(n, box)} with {m} {item[1]} in each {box[0]}.",
                    f"Then {subj} gets {n} {plural(n, box)} of {item[1]}, {m} in each.",
                    f"{cap(pos)} grandmother gives {obj} {n} {plural(n, box)} holding {m} {item[1]} each."]))
                got = b.step(f"{cap(item[1])} in the {box[1]}", n, "*", m)
                cur = b.step("Now", cur, "+", got)
            else:
                b.say(rng.choice([
                    f"{cap(subj)} fills {n} {plural(n, box)} with {m} {item[1]} each and gives them away.",
                    f"{cap(subj)} sends {n} {plural(n, box)} of {m} {item[1]} each to {pos} cousins."]))
                gone = b.step(f"{cap(item[1])} given away", n, "*", m)
                cur = b.step("Left", cur, "-", gone)
        elif kind == "split_give":
            d = b.divisor(cur)
            b.say(rng.choice([
                f"{cap(subj)} puts {pos} {item[1]} into {d} equal {box[1]} and gives one {box[0]} to {friend}.",
                f"{cap(subj)} splits {pos} {item[1]} equally into {d} {box[1]} and sells one {box[0]}."]))
            one = b.step(f"In each {box[0]}", cur, "/", d)
            cur = b.step("Left", cur, "-", one)
        elif kind == "split_keep":
            d = b.divisor(cur)
            b.say(rng.choice([
                f"{cap(subj)} shares them equally among {d} children, {obj}self included.",
                f"{cap(subj)} splits them equally into {d} {box[1]} and keeps just one {box[0]}."]))
            cur = b.step("One share", cur, "/", d)
        elif kind == "half":
            if cur % 2:
                raise Reject
            b.say(rng.choice([f"{cap(subj)} gives half of {pos} {item[1]} to {friend}.",
                              f"Half of the {item[1]} get lost."]))
            cur = b.step("Half are left", cur, "/", 2)
        else:
            f = rng.choice([2, 3])
            b.say(f"By the end of the month, {subj} has {TIMES[f]} as many {item[1]} as before.")
            cur = b.step("End of the month", cur, "*", f)
    other = rng.choice(b.others)
    b.distract([f"{other} has {rng.randint(3, 60)} {item[1]}.",
                f"{friend} is {rng.randint(7, 15)} years old."],
               lambda: f"{cap(pos)} {rng.choice(['sister', 'brother', 'cousin'])} is {rng.randint(3, 19)} years old.")
    q = rng.choice([f"How many {item[1]} does {name} have now?",
                    f"How many {item[1]} does {name} have in the end?",
                    f"How many {item[1]} are left?" if b.steps[-1][2] == "-" else
                    f"How many {item[1]} does {name} have at the end?"])
    return b.finish(q, level)


def compare(b, k, level):
    """People whose counts are given relative to one another."""
    rng = b.rng
    item = rng.choice(ITEMS)
    names = [p[0] for p in b.people]
    combine = rng.choice(["last", "last", "pair", "diff"] + (["all"] if k >= 3 else []))
    if combine == "all":
        n_rel = (k + 1) // 2          # n people: n-1 relations and n-1 additions
        if n_rel * 2 != k:
            raise Reject
    else:
        n_rel = k - (combine != "last")
    if n_rel < 1:
        raise Reject
    vals = [b.start(3, 40)]
    b.say(rng.choice([f"{names[0]} has {vals[0]} {item[1]}.",
                      f"{names[0]} collected {vals[0]} {item[1]}."]))
    for i in range(1, n_rel + 1):
        j = rng.randrange(i) if b.lv.far_refs else i - 1
        v = vals[j]
        kinds = [op for op in b.lv.ops]
        op = rng.choice(kinds)
        label = f"{names[i]}'s {item[1]}"
        if op == "+":
            x = b.addend(v)
            b.say(f"{names[i]} has {x} more {item[1]} than {names[j]}.")
        elif op == "-":
            x = b.subtrahend(v)
            b.say(rng.choice([f"{names[i]} has {x} fewer {item[1]} than {names[j]}.",
                              f"{names[i]} has {x} less than {names[j]}."]))
        elif op == "*":
            x = b.factor(v)
            word = TIMES.get(x) if b.lv.indirect and rng.random() < 0.5 else None
            b.say(f"{names[i]} has {word or f'{x} times'} as many {item[1]} as {names[j]}.")
        else:
            x = b.divisor(v)
            if b.lv.indirect and x in FRACTIONS and rng.random() < 0.5:
                b.say(f"{names[i]} has {FRACTIONS[x]} as many {item[1]} as {names[j]}.")
            else:
                b.say(f"{names[j]} has {x} times as many {item[1]} as {names[i]}.")
        vals.append(b.step(label, v, op, x))
    last = n_rel
    if combine == "last":
        q = f"How many {item[1]} does {names[last]} have?"
    elif combine == "pair":
        i = rng.randrange(last)
        b.step("Together", vals[i], "+", vals[last])
        q = rng.choice([f"How many {item[1]} do {names[i]} and {names[last]} have together?",
                        f"How many {item[1]} do {names[last]} and {names[i]} have in all?"])
    elif combine == "diff":
        i = rng.randrange(last)
        hi, lo = (i, last) if vals[i] >= vals[last] else (last, i)
        b.step("Difference", vals[hi], "-", vals[lo])
        q = f"How many more {item[1]} does {names[hi]} have than {names[lo]}?"
    else:
        tot = vals[0]
        for i in range(1, last + 1):
            tot = b.step("Total so far" if i < last else "Total", tot, "+", vals[i])
        q = f"How many {item[1]} do the {last + 1} friends have altogether?"
    b.distract([f"{names[last + 1]} has {rng.randint(3, 60)} {item[1]}.",
                f"{names[0]} is {rng.randint(7, 15)} years old."],
               lambda: f"{rng.choice(b.others)} has {rng.randint(3, 60)} {rng.choice([i for i in ITEMS if i != item])[1]}.")
    return b.finish(q, level)


def shopping(b, k, level):
    """Purchases at unit prices, then change, coupons or sharing the bill."""
    rng = b.rng
    name, g = b.people[0]
    subj, obj, pos = pron(g)
    n_items = rng.choice([1, 2, 3])
    if 2 * n_items - 1 > k:
        raise Reject
    extras = k - (2 * n_items - 1)
    goods = rng.sample(GOODS, n_items)
    shop = rng.choice(SHOPS)
    parts = []
    for good in goods:
        c, p = b.table_pair()
        parts.append((good, c, p))
    buys = [f"{c} {plural(c, good)} for {p} dollars each" for good, c, p in parts]
    if n_items == 1:
        b.say(rng.choice([f"At {shop}, {name} buys {buys[0]}.",
                          f"{name} goes to {shop} and buys {buys[0]}.",
                          f"Each {parts[0][0][0]} costs {parts[0][2]} dollars at {shop}. "
                          f"{name} buys {parts[0][1]} of them."]))
    else:
        b.say(f"At {shop}, {name} buys " + ", ".join(buys[:-1]) + f" and {buys[-1]}.")
    costs = [b.step(f"Cost of the {good[1]}", c, "*", p) for good, c, p in parts]
    total = costs[0]
    for i, cost in enumerate(costs[1:]):
        total = b.step("Total cost" if i == len(costs) - 2 else "Cost so far", total, "+", cost)
    q = rng.choice([f"How much does {name} spend?", f"How many dollars does {name} pay in all?"])
    ops = []
    if extras >= 1:
        ops = rng.sample(["coupon", "change", "share"], min(extras, 3))
        if extras > 3 or ops.count("share") and ops[-1] != "share":
            ops = [o for o in ops if o != "share"] + (["share"] if "share" in ops else [])
        if len(ops) != extras:
            raise Reject
    for o in ops:
        if o == "coupon":
            x = b.subtrahend(total)
            b.say(rng.choice([f"{cap(subj)} has a coupon for {x} dollars off.",
                              f"The shop gives {obj} a discount of {x} dollars."]))
            total = b.step("After the discount", total, "-", x)
            q = rng.choice([f"How much does {name} pay?", f"How many dollars does {name} pay?"])
        elif o == "change":
            bill = rng.choice([20, 50, 100, 200])
            if bill > b.lv.num_max:
                raise Reject
            b.say(f"{cap(subj)} pays with a {bill} dollar bill.")
            total = b.step("Change", bill, "-", total)
            q = f"How much change does {name} get?"
        else:
            d = b.divisor(total)
            b.say(rng.choice([f"{name} and friends, {d} people in all, share the cost equally.",
                              f"The cost is split equally among {d} people."]))
            total = b.step("Each share", total, "/", d)
            q = "How many dollars does each person pay?"
    b.distract([f"{name} has {rng.randint(2, 9)} {rng.choice(GOODS)[1]} at home.",
                f"The trip to {shop} takes {rng.randint(5, 40)} minutes."],
               lambda: f"{cap(pos)} friend spent {rng.randint(5, 90)} dollars there last week.")
    return b.finish(q, level)


def production(b, k, level):
    """A rate times some periods, then selling or packing the output."""
    rng = b.rng
    who, verb, item = rng.choice(WORKERS)
    per, spans = rng.choice(PERIODS)
    box = rng.choice(CONTAINERS)
    d1, d2 = rng.sample(spans, 2)
    r = b.rng.randint(2, b.lv.table)
    if k >= 3 and "+" in b.lv.ops and rng.random() < 0.5:
        h1, h2 = rng.randint(2, b.lv.table), rng.randint(2, b.lv.table)
        b.say(f"A {who} {verb} {r} {item[1]} each {per[0]}. The {who} works {h1} {per[1]} {d1} "
              f"and {h2} {per[1]} {d2}.")
        if rng.random() < 0.5:
            hs = b.step(f"{cap(per[1])}", h1, "+", h2)
            cur = b.step(f"{cap(item[1])} made", hs, "*", r)
        else:
            a1 = b.step(cap(d1), h1, "*", r)
            a2 = b.step(cap(d2), h2, "*", r)
            cur = b.step(f"{cap(item[1])} made", a1, "+", a2)
    else:
        h = rng.randint(2, b.lv.table)
        b.say(rng.choice([f"A {who} {verb} {r} {item[1]} every {per[0]} for {h} {per[1]}.",
                          f"Every {per[0]}, a {who} {verb} {r} {item[1]}. The {who} works for {h} {per[1]}."]))
        cur = b.step(f"{cap(item[1])} made", h, "*", r)
    unit = item
    q = f"How many {item[1]} are made in total?"
    while len(b.steps) < k:
        kind = rng.choice(["sold", "sold", "extra"] + (["pack"] if "/" in b.lv.ops and unit is item else []))
        if kind == "sold":
            x = b.subtrahend(cur)
            b.say(rng.choice([f"{x} {plural(x, unit)} {are(x)} sold.",
                              f"Then {x} of them {are(x)} given away.",
                              f"The {who} keeps {x} {plural(x, unit)} and sells the rest."
                              if unit is item else f"{x} {plural(x, unit)} {are(x)} sent away."]))
            label = "Sold" if "sells the rest" in b.sents[-1] else "Left"
            cur = b.step(label, cur, "-", x)
            q = f"How many {unit[1]} are sold?" if label == "Sold" else f"How many {unit[1]} are left?"
        elif kind == "extra":
            x = b.addend(cur)
            b.say(rng.choice([f"A helper adds {x} more {unit[1]}.",
                              f"{x} more {unit[1]} are bought from a neighbour.",
                              f"The {who} finds {x} more {unit[1]} in storage."]))
            cur = b.step("Now", cur, "+", x)
            q = f"How many {unit[1]} are there now?"
        else:
            d = b.divisor(cur)
            b.say(rng.choice([f"The {item[1]} are packed in {box[1]} of {d}.",
                              f"They go into {box[1]}, {d} in each {box[0]}."]))
            cur = b.step(f"{cap(box[1])}", cur, "/", d)
            unit = box
            q = f"How many {box[1]} are filled?"
    b.distract([f"The shop opens at {rng.randint(6, 10)} in the morning.",
                f"Last year there were {rng.randint(2, 9)} workers."],
               lambda: f"Each {box[0]} weighs {rng.randint(2, 9)} pounds.")
    return b.finish(q, level)


SCENARIOS = [inventory, compare, shopping, production]


def generate(level, rng):
    """One problem of the given level (1..5)."""
    lv = LEVELS[level]
    while True:
        k = rng.randint(*lv.steps)
        scenario = rng.choice(SCENARIOS)
        try:
            return scenario(Builder(rng, level), k, level)
        except Reject:
            continue


# ---------------------------------------------------------------- prompt format (shared with training)

def prompt(question):
    return f"Question: {question}\nAnswer:\n"


# ---------------------------------------------------------------- checker

STEP_RE = re.compile(r"(-?\d+)\s*([-+*/x])\s*(-?\d+)\s*=\s*(-?\d+)")
ANSWER_RE = re.compile(r"The answer is (-?\d+)\.?\s*$")
NUMBER_RE = re.compile(r"\d+")


def step_ok(a, op, b, c):
    if op == "+":
        return a + b == c
    if op == "-":
        return a - b == c
    if op in "*x":
        return a * b == c
    return b != 0 and a == b * c


def check_solution(text, question=None):
    """Check a solution line by line.

    Returns {"steps": [...], "answer": int or None, "all_ok": bool}. Each line
    other than the final answer line is a step {"line", "ok", "eq"}: eq is
    (a, op, b, c) or None when the line has no equation (then ok is False);
    ok says the equation is arithmetically right. With the question given, a
    step also has "grounded": each operand is a number of the question (or a
    number word such as "half") or the result of an earlier step.
    """
    known = None
    if question is not None:
        known = {int(n) for n in NUMBER_RE.findall(question)}
        known |= {v for w, v in WORD_NUMBERS.items() if w in question.lower()}
    steps, answer = [], None
    for line in text.strip().split("\n"):
        m = ANSWER_RE.search(line)
        if m and line.startswith("The answer is"):
            answer = int(m.group(1))
            break
        m = STEP_RE.search(line)
        step = {"line": line, "eq": None, "ok": False}
        if m:
            a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
            step["eq"] = (a, op, b, c)
            step["ok"] = step_ok(a, op, b, c)
        if known is not None:
            step["grounded"] = bool(m) and step["eq"][0] in known and step["eq"][2] in known
            if m:
                known.add(step["eq"][3])
        steps.append(step)
    all_ok = answer is not None and all(s["ok"] for s in steps)
    return {"steps": steps, "answer": answer, "all_ok": all_ok}


def step_labels(solution, reference, question):
    """Exact process labels for a sampled solution: step i is good when it and
    every step before it are arithmetically right, use grounded operands and
    produce a value the reference solution also produces (so the attempt is
    still on a path to the answer). A cheap stand-in for Monte-Carlo rollout
    labels in this synthetic domain; a correct step in an unusual order is
    labelled bad, which the canonical templates make rare."""
    ref_values = {s["eq"][3] for s in check_solution(reference)["steps"] if s["eq"]}
    labels, good = [], True
    for s in check_solution(solution, question)["steps"]:
        good = good and s["ok"] and s["grounded"] and s["eq"][3] in ref_values
        labels.append(good)
    return labels


# ---------------------------------------------------------------- splits

SPLIT_SEEDS = {"test": 1, "validation": 2, "train": 3}


def make_split(name, per_level, seed, taken):
    """per_level problems of each level whose question is not in taken (updated)."""
    rng = random.Random(seed * 1000003 + SPLIT_SEEDS[name])
    out = []
    for level in LEVELS:
        got = 0
        while got < per_level:
            p = generate(level, rng)
            if p["question"] in taken:
                continue
            taken.add(p["question"])
            out.append(p)
            got += 1
    return out


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--test", type=int, default=100, help="problems per level")
    ap.add_argument("--validation", type=int, default=100, help="problems per level")
    ap.add_argument("--train", type=int, default=60000, help="problems per level")
    ap.add_argument("--show", type=int, default=0, help="print N examples per level and exit")
    args = ap.parse_args()
    if args.show:
        rng = random.Random(args.seed)
        for level in LEVELS:
            for _ in range(args.show):
                p = generate(level, rng)
                print(f"--- level {level}\n{prompt(p['question'])}{p['solution']}")
        return
    os.makedirs(args.out, exist_ok=True)
    taken = set()
    for name in ("test", "validation", "train"):
        rows = make_split(name, getattr(args, name), args.seed, taken)
        write_jsonl(os.path.join(args.out, f"{name}.jsonl"), rows)
        print(f"{name}: {len(rows)} problems")


if __name__ == "__main__":
    main()
