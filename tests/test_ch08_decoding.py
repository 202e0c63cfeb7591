"""Notebook 08's additions: the beam-search trace, its figures, and the greedy coding exercise."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from emformer_edu import exercises, viz  # noqa: E402
from emformer_edu.rnnt.beam_search import RNNTBeamSearch  # noqa: E402
from emformer_edu.teaching.beam_trace import trace_beam_search, trace_beam_search_features  # noqa: E402
from emformer_edu.teaching.exercises._shared import spoken  # noqa: E402
from emformer_edu.train.latency import word_end_delays  # noqa: E402
from exercise_answers.ch08 import greedy, greedy_one_token_per_frame, greedy_stale_state  # noqa: E402


@pytest.fixture(scope="module")
def sentence():
    torch.set_num_threads(1)
    pre = spoken()
    utt = pre.held_out(2, seed=3)[1]
    features = pre.features(utt.waveform)
    return pre, features, torch.tensor(features.shape[0] - pre.right_context_length)


def _same(hyps_a, hyps_b):
    return [(h.tokens, h.score, h.timesteps) for h in hyps_a] == [(h.tokens, h.score, h.timesteps) for h in hyps_b]


def test_trace_returns_the_library_search_and_leaves_the_searcher_alone(sentence):
    pre, features, T = sentence
    searcher = pre.beam_search()
    trace = trace_beam_search_features(searcher, features, T, 3)
    assert _same(trace.hypotheses, searcher(features, T, 3))  # and searcher's own methods are back
    assert "_prune" not in vars(searcher) and "_add_blank" not in vars(searcher)
    enc, _ = pre.model.transcribe(features.unsqueeze(0), T.reshape(1))
    assert [f.frame for f in trace.frames] == list(range(enc.shape[1]))
    for f in trace.frames:
        assert 1 <= len(f.kept) <= 3 and len(f.candidates) >= len(f.kept)
        assert all(any(h is c for c in f.candidates) for h in f.kept)  # survivors come from B
        keys = [h.score / (len(h.tokens) + 1) for h in f.kept]
        assert keys == sorted(keys, reverse=True)
        assert 0 <= f.tokens_emitted <= searcher.step_max_tokens
        assert f.merges >= 0 and sum(f.a_sizes) == len(f.candidates) + f.merges
    assert [h.tokens for h in trace.frames[-1].kept] == [h.tokens for h in trace.hypotheses]
    path = trace.best_path()
    assert path[-1] is not None and path[-1].tokens == trace.hypotheses[0].tokens
    assert all(p is not None for p in path)


def test_trace_continues_streaming_hypotheses_and_respects_step_max_tokens(sentence):
    pre, features, T = sentence
    searcher = RNNTBeamSearch(pre.model, pre.blank, step_max_tokens=1)
    state, hyps, traces = None, None, []
    for chunk, length in pre.chunks(features)[:3]:
        enc, enc_len, state = pre.model.transcribe_streaming(chunk, length, state)
        trace = trace_beam_search(searcher, enc, 2, hyps)
        assert _same(trace.hypotheses, searcher.search(enc, 2, hyps))
        hyps = trace.hypotheses
        traces.append(trace)
    frames = [f.frame for t in traces for f in t.frames]
    assert frames == list(range(len(frames)))  # global frame indices across chunks
    assert all(f.tokens_emitted <= 1 for t in traces for f in t.frames)


def test_trace_of_a_torchaudio_searcher_equals_its_own_result(sentence):
    # The trace listens to emformer_edu's search; torchaudio's search on the twin model gives the same beam.
    import torchaudio

    from emformer_edu import torchaudio_twin

    pre, features, T = sentence
    trace = trace_beam_search_features(pre.beam_search(), features, T, 4)
    with torch.no_grad():
        theirs = torchaudio.models.RNNTBeamSearch(torchaudio_twin(pre.model), pre.blank)(features, T, 4)
    assert [h.tokens for h in trace.hypotheses] == [h[0] for h in theirs]
    assert [h.score for h in trace.hypotheses] == pytest.approx([h[3] for h in theirs], abs=1e-4)


def test_beam_hypotheses_figure_draws_the_traced_beam(sentence):
    pre, features, T = sentence
    trace = trace_beam_search_features(pre.beam_search(), features, T, 4)
    fig = viz.beam_hypotheses_figure(trace, pre.vocab, frames=range(2, 12))
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    assert grid.shape == (10, 4)
    for r, f in enumerate(trace.frames[2:12]):
        for c, h in enumerate(f.kept):
            assert grid[r, c] == pytest.approx(h.score)
    texts = [t.get_text() for t in ax.texts]
    assert "|B| merged tokens" in texts
    assert len(texts) >= 10
    plt.close(fig)


def test_delay_histogram_figure_draws_the_given_delays(sentence):
    pre, _, _ = sentence
    utts = list(pre.held_out(3, seed=3))
    w = word_end_delays(pre.model, utts, pre.feature_extractor, pre.blank, pre.vocab, streaming=True)
    fig = viz.delay_histogram_figure([("words", {"emitted": w.emitted_ms, "available": w.available_ms})])
    ax = fig.axes[0]
    assert len(ax.patches) == 2  # one outlined histogram per series
    heights = ax.patches[0].get_path().vertices[:, 1]
    assert heights.max() >= 1 and sum(1 for _ in ax.get_legend().get_texts()) == 3  # 2 series + the zero line
    plt.close(fig)


def test_greedy_exercise_accepts_the_right_decoder_and_rejects_both_bugs():
    assert exercises.is_correct("08.greedy", greedy)
    assert not exercises.is_correct("08.greedy", greedy_stale_state)
    assert not exercises.is_correct("08.greedy", greedy_one_token_per_frame)


def test_greedy_exercise_cases_exercise_the_cap():
    # At least one case emits more than one token at some frame, and one has a cap of 1.
    cases = exercises.expected("08.greedy")
    assert any(case["max_symbols_per_frame"] == 1 for case, _ in cases)
    assert any(len(want) > case["enc_out"].shape[1] for case, want in cases)
