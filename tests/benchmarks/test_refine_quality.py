"""The retrieve-and-refine benchmark runs the dailydialog-en recipe with one setting added."""

from benchmarks.recipes import commands, read_recipe
from benchmarks.refine_quality import REFINE, refined_recipe


def test_the_refined_recipe_differs_only_by_the_refine_setting() -> None:
    plain, refined = commands(read_recipe("dailydialog-en")), commands(refined_recipe())
    assert len(plain) == len(refined)
    changed = [(a, b) for a, b in zip(plain, refined, strict=True) if a != b]
    assert len(changed) == 1
    before, after = changed[0]
    assert before.startswith("s2s train --task chat")
    assert after.replace(f"{REFINE} ", "") == before
