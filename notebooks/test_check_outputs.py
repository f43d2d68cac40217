"""Tests of check_outputs.py: what the notebook check compares and what it leaves out."""

import json
import os
import tempfile
import unittest

import check_outputs as co


def notebook(*cells):
    """A notebook of code cells, each (outputs, tags)."""
    return {"cells": [{"cell_type": "code", "source": f"cell {i}", "metadata": {"tags": tags}, "outputs": outs}
                      for i, (outs, tags) in enumerate(cells)], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


class TestNormalise(unittest.TestCase):
    def test_cases(self):
        cases = [
            ("numbers to 6 significant digits", "p = 1.4802421295859475e-13, est 0.6578157486887788.", "p = 1.48024e-13, est 0.657816."),
            ("float noise in the 16th digit", "2.7536057829805274", "2.7536057829805270"),
            ("negative zero", "-0.0 and 0", "0 and 0"),
            ("dates and times", "computed_at 2026-12-03T07:53:59.055068Z on 2026-11-19", "computed_at 2027-01-01T00:00:00Z on 2027-01-02"),
            ("hashes", "input_hash 523dd5d4582ad792406b6deafa2b38c1013ffe43", "input_hash 00aa11bb22cc33dd44ee55ff66778899aabbccdd"),
            ("API keys", "key lift_notebooks_0123456789abcdef", "key lift_notebooks_fedcba9876543210"),
            ("words with digits are kept", "user-0001 v1 353ms", "user-0001 v1 353ms"),
        ]
        for name, a, b in cases:
            with self.subTest(name):
                self.assertEqual(co.normalise(a), co.normalise(b))

    def test_different_numbers_differ(self):
        cases = [("2.75", "2.76"), ("0.329302", "0.329312"), ("spent 0.9", "spent 0.6"), ("409 budget_exhausted", "200 budget_exhausted")]
        for a, b in cases:
            with self.subTest(a=a, b=b):
                self.assertNotEqual(co.normalise(a), co.normalise(b))


class TestCompare(unittest.TestCase):
    def write(self, d, name, nb):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            json.dump(nb, f)
        return p

    def test_compare(self):
        png = {"output_type": "display_data", "data": {"image/png": "AAAA", "text/plain": "<Figure size 640x480 with 1 Axes>"}}
        base = notebook(([stream("estimate 2.7536\n")], []), ([stream("noised 0.123\n")], ["nocheck"]), ([png], []))
        cases = [
            ("same", notebook(([stream("estimate 2.7536\n")], []), ([stream("noised 0.123\n")], ["nocheck"]), ([png], [])), False),
            ("nocheck cell differs", notebook(([stream("estimate 2.7536\n")], []), ([stream("noised 9.9\n")], ["nocheck"]), ([png], [])), False),
            ("image differs", notebook(([stream("estimate 2.7536\n")], []), ([stream("noised 0.123\n")], ["nocheck"]),
                                       ([dict(png, data={"image/png": "BBBB"})], [])), False),
            ("number differs", notebook(([stream("estimate 2.7600\n")], []), ([stream("noised 0.123\n")], ["nocheck"]), ([png], [])), True),
            ("cell failed", notebook(([{"output_type": "error", "ename": "KeyError", "evalue": "'x'", "traceback": []}], []),
                                     ([stream("noised 0.123\n")], ["nocheck"]), ([png], [])), True),
            ("image cell missing", notebook(([stream("estimate 2.7536\n")], [])), False),
        ]
        with tempfile.TemporaryDirectory() as d:
            a = self.write(d, "a.ipynb", base)
            for name, other, differs in cases:
                with self.subTest(name):
                    diff = co.compare(a, self.write(d, "b.ipynb", other))
                    self.assertEqual(bool(diff), differs, "\n".join(diff))

    def test_main_fails_on_difference(self):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "c"))
            os.mkdir(os.path.join(d, "e"))
            self.write(os.path.join(d, "c"), "n.ipynb", notebook(([stream("spent 0.9\n")], [])))
            self.write(os.path.join(d, "e"), "n.ipynb", notebook(([stream("spent 0.6\n")], [])))
            self.assertEqual(co.main(["x", os.path.join(d, "c"), os.path.join(d, "e")]), 1)
            self.write(os.path.join(d, "e"), "n.ipynb", notebook(([stream("spent 0.9\n")], [])))
            self.assertEqual(co.main(["x", os.path.join(d, "c"), os.path.join(d, "e")]), 0)


if __name__ == "__main__":
    unittest.main()
