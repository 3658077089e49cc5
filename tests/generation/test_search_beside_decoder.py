"""The search for a message's retrieved replies runs beside the decoder, on a thread of its
own (`Generator.pools`): a bot's message no longer costs the sum of the two on the one
generation worker."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from nlp.decoding import DecodeOptions
from nlp.generation.generator import Generator

WAIT_S = 20.0  # far above a tiny model's call: only a search waiting for nothing runs out


def test_the_search_and_the_decoder_run_at_once(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = Generator.from_bundle(tiny_bundle)
    searching, decoding = threading.Event(), threading.Event()
    threads: dict[str, str] = {}
    search, decode = generator.candidates.retrieve, generator.decoder.decode

    def retrieve(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads["search"] = threading.current_thread().name
        searching.set()
        if not decoding.wait(WAIT_S):
            raise AssertionError("the search ran while no decoder did")
        return search(*args, **kwargs)

    def decoder(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads["decode"] = threading.current_thread().name
        decoding.set()
        if not searching.wait(WAIT_S):
            raise AssertionError("the decoder ran while no search did")
        return decode(*args, **kwargs)

    monkeypatch.setattr(generator.candidates, "retrieve", retrieve)
    monkeypatch.setattr(generator.decoder, "decode", decoder)
    [n_best] = generator.generate(["how are you today ?"], DecodeOptions(retrieve=3))
    assert threads["search"] != threads["decode"]
    provenances = {g.provenance for g in n_best}
    assert provenances == {"generated", "retrieved"}


def test_the_same_candidates_as_one_after_the_other(tiny_bundle: Path) -> None:
    generator = Generator.from_bundle(tiny_bundle)
    options = DecodeOptions(retrieve=3, n_best=2, beam_size=2, strategy="beam")
    texts = ["how are you today ?", "what do you do ?", ""]
    inputs, pools = generator.pools(texts, options)
    decoded, has_tokens = generator._decoded(inputs, [None] * len(inputs), options, None)
    found = generator.candidates.retrieve(texts, 3)
    expected = [
        [g.text for g in n_best]
        + ([g.text for g in generator.candidates.retrieved(inputs[i], found[i])]
           if has_tokens[i] else [])
        for i, n_best in enumerate(decoded)
    ]
    assert [[g.text for g in pool] for pool in pools] == expected
    assert pools[2] == []


def test_an_error_in_the_search_reaches_the_caller(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = Generator.from_bundle(tiny_bundle)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("index unreadable")

    monkeypatch.setattr(generator.candidates, "retrieve", broken)
    with pytest.raises(OSError, match="index unreadable"):
        generator.generate(["hello"], DecodeOptions(retrieve=3))
    # and the generator goes on serving
    assert generator.generate(["hello"], DecodeOptions())[0]
