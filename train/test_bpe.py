"""Tests for bpe.py: python3 -m unittest test_bpe (from train/)."""

import os
import unittest

import bpe

HERE = os.path.dirname(os.path.abspath(__file__))


class PreTokenizerTest(unittest.TestCase):
    def test_qwen2_splits(self):
        self.assertEqual(bpe.pretokenize("Ava has 125 pens.\nAnswer:\n"),
                         ["Ava", " has", " ", "1", "2", "5", " pens", ".\n", "Answer", ":\n"])
        self.assertEqual(bpe.pretokenize("she's  x = 7!!\n\n"),
                         ["she", "'s", " ", " x", " =", " ", "7", "!!\n\n"])
        self.assertEqual(bpe.pretokenize("a  \n b"), ["a", "  \n", " b"])

    def test_ascii_only(self):
        with self.assertRaises(ValueError):
            bpe.pretokenize("caf\u00e9")


class TokenizerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        texts = ["Question: Ava has 12 apples.\nAnswer:\nLeft: 12 - 3 = 9.\nThe answer is 9."] * 3
        cls.tok = bpe.Tokenizer(bpe.train(texts, 300))

    def test_layout(self):
        t = self.tok
        self.assertEqual(t.tokens[:256], [bpe.BYTE_CHAR[b] for b in range(256)])
        self.assertEqual(t.tokens[-3:], bpe.SPECIALS)
        self.assertEqual(t.types.count(bpe.TYPE_CONTROL), 3)
        self.assertEqual(bpe.BYTE_CHAR[ord(" ")], "\u0120")   # GPT-2's "G-dot" space
        self.assertEqual(len(set(bpe.BYTE_CHAR.values())), 256)

    def test_merges_stop_at_piece_boundaries(self):
        ids = self.tok.encode(" apples 12")
        pieces = [self.tok.tokens[i] for i in ids]
        self.assertEqual(pieces, ["\u0120apples", "\u0120", "1", "2"])

    def test_round_trip_and_prompt_boundary(self):
        t = self.tok
        text = "Zed's 7 odd words,\tand\r\nmore  spaces "
        self.assertEqual(t.decode(t.encode(text)), text)
        ids, n = t.encode_example("Ava has 12 apples.", "Left: 12 - 3 = 9.\nThe answer is 9.")
        self.assertEqual(ids[0], t.bos)
        self.assertEqual(ids[-1], t.eos)
        self.assertEqual(t.decode(ids[n:]), "Left: 12 - 3 = 9.\nThe answer is 9.")

    def test_lowest_rank_merge_first(self):
        # "ab" ranks before "bc": "abc" must become ab + c, not a + bc
        g = bpe.BYTE_CHAR
        t = bpe.Tokenizer([(g[ord("a")], g[ord("b")]), (g[ord("b")], g[ord("c")])])
        self.assertEqual([t.tokens[i] for i in t.encode("abc")], ["ab", "c"])
        t = bpe.Tokenizer([(g[ord("b")], g[ord("c")]), (g[ord("a")], g[ord("b")])])
        self.assertEqual([t.tokens[i] for i in t.encode("abc")], ["a", "bc"])

    def test_bundled_tokenizer_loads(self):
        t = bpe.Tokenizer.load(os.path.join(HERE, "tokenizer.json"))
        self.assertLessEqual(len(t), 1024)
        self.assertEqual(t.decode(t.encode("Total: 45 + 27 = 72.\n")), "Total: 45 + 27 = 72.\n")


if __name__ == "__main__":
    unittest.main()
