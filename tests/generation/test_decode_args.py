"""The decoding flags: a bool option's flag goes both ways, so a setting the bundle stores
can be overridden either way on the command line."""

from __future__ import annotations

import argparse

import pytest

from nlp.decoding import DecodeOptions
from nlp.generation.decode_args import (
    add_decode_arguments,
    flag_changes,
    given_flags,
    merge_options,
)

# What `s2s tune-decoding` stores for a chat model with an index: retrieved replies only.
RETRIEVED_ONLY = DecodeOptions(retrieve=10, generated=False, rerank="retrieval")


def parsed(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_decode_arguments(parser)
    return parser.parse_args(list(flags))


@pytest.mark.parametrize(
    ("flags", "base", "generated"),
    [((), RETRIEVED_ONLY, False), (("--generated",), RETRIEVED_ONLY, True),
     ((), DecodeOptions(), True), (("--no-generated",), DecodeOptions(), False)],
)
def test_generated_replies_can_be_turned_on_and_off_over_the_bundles_setting(
    flags: tuple[str, ...], base: DecodeOptions, generated: bool
) -> None:
    args = parsed(*flags)
    assert merge_options(base, flag_changes(args)).generated is generated
    assert given_flags(args) == list(flags)


def test_every_switch_goes_both_ways_in_its_own_sense() -> None:
    """`--allow-unk` (named otherwise than `suppress_unk`) still lets the decoder emit <unk>
    and `--no-allow-unk` forbids it again; `--no-mmi-per-token` undoes a tuned per-token MMI."""
    tuned = DecodeOptions(suppress_unk=False, mmi_per_token=True)
    assert merge_options(None, flag_changes(parsed("--allow-unk"))).suppress_unk is False
    assert merge_options(tuned, flag_changes(parsed("--no-allow-unk"))).suppress_unk is True
    assert merge_options(tuned, flag_changes(parsed("--no-mmi-per-token"))).mmi_per_token is False
    assert merge_options(tuned, flag_changes(parsed())) == tuned


def test_overrides_ask_for_what_they_name_on_any_bundle() -> None:
    """`{"strategy": "beam"}` on a sampling bundle (a beam of 1) decoded greedily under the
    name of beam search; `{"max_length": 2}` on a bundle that blocks repeated 3-grams was
    refused naming `no_repeat_ngram`, which nobody set. The chat's /beam and /length do
    both right; the HTTP `decoding` objects and `nlp.api` now do too."""
    sampling = merge_options(DecodeOptions(), {"strategy": "sample"})
    assert sampling.beam_size == 1
    beam = merge_options(sampling, {"strategy": "beam"})
    assert (beam.strategy, beam.beam_size) == ("beam", DecodeOptions().beam_size)
    assert merge_options(sampling, {"strategy": "beam", "beam_size": 2}).beam_size == 2
    assert merge_options(DecodeOptions(beam_size=8), {"strategy": "beam"}).beam_size == 8
    short = merge_options(DecodeOptions(no_repeat_ngram=3, min_length=2), {"max_length": 2})
    assert (short.no_repeat_ngram, short.min_length, short.max_length) == (2, 2, 2)


def test_a_diverse_beam_takes_its_width_from_beam() -> None:
    """`--diverse-beam G` could only round the bundle's beam to whole groups: `--beam` was
    refused beside it, so no width but the bundle's was possible from the command line."""
    from nlp.decoding.options import OptionError

    args = parsed("--beam", "6", "--diverse-beam", "3")
    options = merge_options(DecodeOptions(beam_size=5, n_best=5), flag_changes(args))
    assert (options.strategy, options.beam_size, options.beam_groups) == ("diverse_beam", 6, 3)
    assert options.n_best == 5
    assert given_flags(args) == ["--beam 6", "--diverse-beam 3"]
    rounded = merge_options(DecodeOptions(beam_size=5), flag_changes(parsed("--diverse-beam", "2")))
    assert (rounded.beam_size, rounded.beam_groups) == (4, 2)  # the bundle's, in whole groups
    with pytest.raises(OptionError, match="multiple of beam_groups"):
        merge_options(None, flag_changes(parsed("--beam", "5", "--diverse-beam", "2")))
    for other in (("--greedy",), ("--sample", "0.7")):
        with pytest.raises(OptionError, match="--beam"):
            flag_changes(parsed("--beam", "3", *other))
