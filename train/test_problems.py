"""Tests for problems.py: python3 -m unittest test_problems (from train/)."""

import random
import unittest

import problems


def sample(level, n, seed=0):
    rng = random.Random(seed)
    return [problems.generate(level, rng) for _ in range(n)]


class GeneratorTest(unittest.TestCase):
    def test_levels_respect_their_bounds(self):
        for level, lv in problems.LEVELS.items():
            for p in sample(level, 200, seed=level):
                res = problems.check_solution(p["solution"], p["question"])
                n = len(res["steps"])
                self.assertTrue(lv.steps[0] <= n <= lv.steps[1], p)
                self.assertTrue(res["all_ok"], p)
                self.assertEqual(res["answer"], p["answer"])
                self.assertEqual(res["steps"][-1]["eq"][3], p["answer"])
                for s in res["steps"]:
                    a, op, b, c = s["eq"]
                    self.assertIn(op, lv.ops, p)
                    self.assertTrue(s["grounded"], (p, s))
                    self.assertTrue(0 <= c <= lv.num_max and a <= lv.num_max, p)
                    if op in "*/":
                        x, y = (a, b) if op == "*" else (c, b)
                        self.assertTrue(2 <= min(x, y) and max(x, y) <= lv.table, p)

    def test_levels_grow_harder(self):
        def mean_steps(level):
            ps = sample(level, 200, seed=10 + level)
            return sum(p["solution"].count("\n") for p in ps) / len(ps)
        means = [mean_steps(level) for level in problems.LEVELS]
        self.assertEqual(means, sorted(means))
        self.assertGreater(means[-1], means[0] + 3)

    def test_seeded_and_varied(self):
        self.assertEqual(sample(3, 20, seed=5), sample(3, 20, seed=5))
        ps = sample(4, 300, seed=6)
        self.assertGreater(len({p["question"] for p in ps}), 295)
        openings = {" ".join(p["question"].split()[1:3]) for p in ps}
        self.assertGreater(len(openings), 10)

    def test_splits_are_disjoint(self):
        taken = set()
        test = problems.make_split("test", 30, 1, taken)
        val = problems.make_split("validation", 30, 1, taken)
        train = problems.make_split("train", 200, 1, taken)
        self.assertEqual(len(test), 150)
        self.assertEqual([p["level"] for p in test[::30]], [1, 2, 3, 4, 5])
        qs = [{p["question"] for p in s} for s in (test, val, train)]
        self.assertEqual(sum(map(len, qs)), 150 + 150 + 1000)
        self.assertFalse(qs[0] & qs[1] or qs[0] & qs[2] or qs[1] & qs[2])


class CheckerTest(unittest.TestCase):
    def test_right_and_wrong_steps(self):
        text = ("Cost of the pens: 4 * 3 = 12.\n"
                "Total: 12 + 9 = 22.\n"
                "Each share: 22 / 2 = 11.\n"
                "Left: 11 - 4 = 7.\n"
                "The answer is 7.")
        res = problems.check_solution(text)
        self.assertEqual([s["ok"] for s in res["steps"]], [True, False, True, True])
        self.assertEqual(res["steps"][1]["eq"], (12, "+", 9, 22))
        self.assertEqual(res["answer"], 7)
        self.assertFalse(res["all_ok"])

    def test_division_is_exact_and_never_by_zero(self):
        self.assertFalse(problems.check_solution("Half: 7 / 2 = 3.")["steps"][0]["ok"])
        self.assertFalse(problems.check_solution("Bad: 7 / 0 = 0.")["steps"][0]["ok"])
        self.assertTrue(problems.check_solution("Ok: 0 / 5 = 0.")["steps"][0]["ok"])

    def test_malformed_lines(self):
        res = problems.check_solution("I think so.\nA: 2 + 2 = 4.\nThe answer is 4")
        self.assertEqual([s["ok"] for s in res["steps"]], [False, True])
        self.assertIsNone(res["steps"][0]["eq"])
        self.assertEqual(res["answer"], 4)
        res = problems.check_solution("A: 2 + 2 = 4.")
        self.assertIsNone(res["answer"])
        self.assertFalse(res["all_ok"])
        self.assertEqual(problems.check_solution("Neg: 3 - 5 = -2.")["steps"][0]["eq"], (3, "-", 5, -2))

    def test_grounding(self):
        q = "Ava has 12 pens. She gives half of them to Ben. Ben has 9 cups."
        res = problems.check_solution("Left: 12 / 2 = 6.\nMore: 6 + 5 = 11.\nX: 6 + 9 = 15.", q)
        self.assertEqual([s["grounded"] for s in res["steps"]], [True, False, True])

    def test_step_labels(self):
        q = "Ava has 12 pens. She gives half of them to Ben. Then she buys 5 more. Ben has 9 cups."
        ref = "Half are left: 12 / 2 = 6.\nNow: 6 + 5 = 11.\nThe answer is 11."
        self.assertEqual(problems.step_labels(ref, ref, q), [True, True])
        wrong_fact = "Half are left: 12 / 2 = 6.\nNow: 6 + 5 = 12.\nThe answer is 12."
        self.assertEqual(problems.step_labels(wrong_fact, ref, q), [True, False])
        distracted = "Half are left: 12 / 2 = 6.\nNow: 6 + 9 = 15.\nMore: 15 - 4 = 11.\nThe answer is 11."
        self.assertEqual(problems.step_labels(distracted, ref, q), [True, False, False])
        self.assertEqual(problems.step_labels("Hmm.\nNow: 6 + 5 = 11.", ref, q), [False, False])

    def test_prompt_format(self):
        self.assertEqual(problems.prompt("Q?"), "Question: Q?\nAnswer:\n")


if __name__ == "__main__":
    unittest.main()
