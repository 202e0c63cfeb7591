"""The spoken model's report card: listening conditions, word pairing, word-end delays, the accuracy table."""
import subprocess
import sys

import pytest
import torch

from conftest import needs_espeak
from emformer_edu.data.speech import character_vocabulary
from emformer_edu.data.spoken import CONDITIONS, SpokenConfig, SpokenDataset, listening_condition
from emformer_edu.train import latency, matched_pairs, word_end_delays
from emformer_edu.train.metrics import TERResult, edit_distance
from emformer_edu.train.report import ROWS, accuracy_table, format_table


# ----------------------------------------------------------------------------- conditions
def test_listening_conditions_change_only_how_the_test_split_is_heard():
    base = SpokenConfig()
    assert listening_condition("held out") == base
    seen = listening_condition("clean, seen voices", base)
    assert seen.test_voices == base.train_voices and seen.snr_db[0] >= base.snr_db[1] and seen.reverb_probability == 0
    clean = listening_condition("clean, unseen voices", base)
    assert clean.test_voices == base.test_voices and clean.reverb_probability == 0
    assert listening_condition("noisy, unseen voices").snr_db[1] <= base.snr_db[0]  # below anything training heard
    assert listening_condition("fast, unseen voices").rate[0] >= base.rate[1]
    for name in CONDITIONS:  # the lexicon and the sentence split never change
        c = listening_condition(name, base)
        assert c.lexicon == base.lexicon and c.test_pair_fraction == base.test_pair_fraction
    with pytest.raises(ValueError, match="condition must be one of"):
        listening_condition("loud")


def test_every_condition_says_the_same_sentences():
    sentences = {name: [SpokenDataset(5, "test", 3, listening_condition(name)).sentence(i) for i in range(5)]
                 for name in CONDITIONS}
    assert all(s == sentences["held out"] for s in sentences.values())


# ----------------------------------------------------------------------------- pairing
@pytest.mark.parametrize("ref, hyp, pairs", [
    ("abc", "abc", [(0, 0), (1, 1), (2, 2)]),
    ("abc", "xbc", [(1, 1), (2, 2)]),  # substitution
    ("abc", "ac", [(0, 0), (2, 1)]),  # deletion
    ("abc", "abxc", [(0, 0), (1, 1), (2, 3)]),  # insertion
    ("", "ab", []),
    ("ab", "", []),
])
def test_matched_pairs_follow_one_cheapest_edit_path(ref, hyp, pairs):
    assert matched_pairs(ref, hyp) == pairs


def test_matched_pairs_agree_with_the_edit_distance():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        ref = torch.randint(0, 3, (int(torch.randint(0, 8, (1,), generator=g)),), generator=g).tolist()
        hyp = torch.randint(0, 3, (int(torch.randint(0, 8, (1,), generator=g)),), generator=g).tolist()
        pairs = matched_pairs(ref, hyp)
        assert all(ref[i] == hyp[j] for i, j in pairs)
        assert [i for i, _ in pairs] == sorted({i for i, _ in pairs})  # increasing, one-to-one
        assert [j for _, j in pairs] == sorted({j for _, j in pairs})
        # The cheapest alignment with these matches: between two matches, a reference tokens and b hypothesis
        # tokens cost max(a, b) edits (substitutions, then deletions or insertions). It is the edit distance.
        bounds = [(-1, -1)] + pairs + [(len(ref), len(hyp))]
        cost = sum(max(i1 - i0 - 1, j1 - j0 - 1) for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]))
        assert cost == edit_distance(ref, hyp)


def test_matched_pairs_of_words():
    assert matched_pairs("go to the left".split(), "go the lift".split()) == [(0, 0), (2, 1)]


# ----------------------------------------------------------------------------- word-end delays
class _Utt:
    def __init__(self, text, word_ends):
        from emformer_edu.data.speech import Spans
        words = text.split()
        self.text, self.waveform = text, torch.zeros(16000)
        self.tokens = torch.tensor(character_vocabulary().encode(text))
        self.words = Spans(torch.zeros(len(words), dtype=torch.long), torch.tensor(word_ends), tuple(words))


class _Model:
    class transcriber:
        segment_length, right_context_length = 16, 4

        class time_reduction:
            stride = 4


def test_word_end_delays_time_the_last_character_of_each_right_word(monkeypatch):
    """Hypothesis "go the lift" for "go to the left": "go" and "the" are right. Their last characters
    are emitted at encoder frames 5 and 12; the words end at samples 800 (50 ms) and 2400 (150 ms)."""
    vocab = character_vocabulary()
    utt = _Utt("go to the left", [800, 1600, 2400, 4000])
    hyp = "go the lift"
    times = [4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17]  # one encoder frame per hypothesis character
    result = TERResult([utt.tokens.tolist()], [vocab.encode(hyp)], [times], 0, 1, [utt.text], [hyp])
    monkeypatch.setattr(latency, "evaluate", lambda *a, **k: result)
    d = word_end_delays(_Model(), [utt], None, vocab.blank, vocab)
    assert (d.words, d.total_words) == (2, 4)
    # Frame k ends at (k + 1) * 4 input frames = 40 (k + 1) ms.
    assert d.emitted_ms.tolist() == [6 * 40 - 50, 13 * 40 - 150]
    # Frame k is in segment k * 4 // 16 and is available once (segment + 1) * 16 + 4 input frames arrived.
    assert d.available_ms.tolist() == [(2 * 16 + 4) * 10 - 50, (4 * 16 + 4) * 10 - 150]  # segments 1 and 3
    assert "2 of 4 words right" in d.summary() and "90th percentile" in d.summary()
    wrong = TERResult([utt.tokens.tolist()], [vocab.encode("no")], [[3, 4]], 0, 1, [utt.text], ["no"])
    monkeypatch.setattr(latency, "evaluate", lambda *a, **k: wrong)
    none = word_end_delays(_Model(), [utt], None, vocab.blank, vocab)
    assert none.words == 0 and "0 of 4 words right, no word end to time" in none.summary()


def test_word_end_delays_need_characters_and_word_spans():
    from emformer_edu.data.corpus import Vocabulary
    with pytest.raises(ValueError, match="character vocabulary"):
        word_end_delays(_Model(), [], None, 2, Vocabulary(("ab", "c")))
    utt = _Utt("go", [800])
    utt.words = None
    with pytest.raises(ValueError, match="word spans"):
        word_end_delays(_Model(), [utt], None, 28, character_vocabulary())


# ----------------------------------------------------------------------------- the table
def test_table_rows_and_format():
    assert [r for r, _, _ in ROWS][:2] == ["full context", "streaming"]
    assert {c for _, c, _ in ROWS} == set(CONDITIONS)
    r = TERResult([[0]], [[0]], [[0]], 0, 1, ["go to"], ["go two"])
    text = format_table({"streaming": {"greedy": r, "beam": r}})
    assert "| streaming | 20.0 / 50.0 | 20.0 / 50.0 |" in text


@needs_espeak
def test_accuracy_table_of_a_small_spoken_model(tmp_path, capsys):
    from test_train_spoken import STEADY, spoken_config, tiny_spoken_model
    from emformer_edu import pretrained
    from emformer_edu.train import Trainer, export_assets

    trainer = Trainer(spoken_config(steps=1), tiny_spoken_model(), STEADY, progress=False)
    trainer.fit()
    export_assets(trainer, str(tmp_path), name="tiny")
    pre = pretrained.load_exported(str(tmp_path), "tiny")
    seen = []
    table = accuracy_table(pre, 2, beam_width=2, rows=("streaming", "fast, unseen voices"), progress=seen.append)
    assert seen == ["streaming", "fast, unseen voices"] and list(table) == seen
    assert all(set(cell) == {"greedy", "beam"} and len(cell["beam"].refs) == 2 for cell in table.values())
    with pytest.raises(ValueError, match="unknown rows"):
        accuracy_table(pre, 2, rows=("loud",))
    with pytest.raises(ValueError, match="spoken models"):
        accuracy_table(pretrained.toy())
    with pytest.raises(ValueError, match="spoken models"):
        pretrained.toy().held_out(2, condition="fast, unseen voices")
    from emformer_edu.train import report
    assert report.main(["--assets", str(tmp_path), "--name", "tiny", "--utterances", "2", "--beam-width", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n| ") == len(ROWS) and "words right" in printed
    fast = pre.held_out(2, seed=3, condition="fast, unseen voices")
    assert all(fast[i].speaker.rate >= 230 for i in range(2))
    assert pre.spoken_config == STEADY


def test_figures_label_the_space_visibly():
    v = character_vocabulary()
    assert v.label(v.encode(" ")[0]) == "\u2423" and v.name(v.encode(" ")[0]) == " "
    assert v.label(0) == "a" and v.label(v.blank) == v.blank_name


def test_word_end_delays_time_a_given_result_without_decoding_again(monkeypatch):
    """With evaluate()'s result passed in, the same delays and no second decode; a result of other utterances is refused."""
    vocab = character_vocabulary()
    utt = _Utt("go to the left", [800, 1600, 2400, 4000])
    hyp = "go the lift"
    times = [4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17]
    result = TERResult([utt.tokens.tolist()], [vocab.encode(hyp)], [times], 0, 1, [utt.text], [hyp])
    monkeypatch.setattr(latency, "evaluate", lambda *a, **k: result)
    decoded = word_end_delays(_Model(), [utt], None, vocab.blank, vocab)

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(latency, "evaluate", no_decoding)
    given = word_end_delays(_Model(), [utt], None, vocab.blank, vocab, result=result)
    assert torch.equal(decoded.emitted_ms, given.emitted_ms) and torch.equal(decoded.available_ms, given.available_ms)
    with pytest.raises(ValueError, match="1 hypotheses for 2 utterances"):
        word_end_delays(_Model(), [utt, utt], None, vocab.blank, vocab, result=result)


def test_the_report_command_runs_without_warnings():
    """``python -m emformer_edu.train.report`` is a documented command: its module must not be imported by the
    package first (runpy would warn that it is already in sys.modules)."""
    run = subprocess.run([sys.executable, "-m", "emformer_edu.train.report", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "--utterances" in run.stdout
    assert run.stderr == ""
