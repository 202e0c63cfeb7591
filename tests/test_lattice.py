"""The alignment lattice of one utterance: alpha/beta, posteriors, Viterbi, forced alignment."""
import dataclasses
import time

import pytest
import torch
import torchaudio

from emformer_edu import EmformerRNNTConfig
from emformer_edu.rnnt.lattice import (
    LatticeAlignment,
    alignment_paths,
    forced_align,
    lattice_log_probs,
    lattice_tables,
    log_alpha,
    log_beta,
    path_log_probs,
    token_frames,
    utterance_lattice,
    viterbi,
)
from emformer_edu.rnnt.loss_fast import alpha_beta, edge_posteriors, rnnt_loss

SHAPES = [(1, 0), (1, 3), (5, 0), (3, 2), (7, 4), (4, 6), (12, 5)]  # (T, U), incl. T=1, U=0, U>T


def random_lattice(T, U, V=6, blank=-1, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, U + 1, V, generator=g, dtype=torch.float64) * scale
    blank_idx = blank % V
    tokens = torch.randint(0, V - 1, (U,), generator=g)
    tokens = tokens + (tokens >= blank_idx).long()
    return logits, tokens


@pytest.mark.parametrize("T,U", SHAPES)
def test_posteriors_sum_to_one_on_every_cut(T, U):
    logits, tokens = random_lattice(T, U, seed=T * 10 + U)
    lat = lattice_tables(*utterance_lattice(logits, tokens))
    t = torch.arange(T)[:, None]
    u = torch.arange(U + 1)[None, :]
    # Every edge moves one step on t + u (blank: t+1, emit: u+1), so every path
    # visits exactly one node of each anti-diagonal n = t + u, n = 0 .. T-1+U:
    # each anti-diagonal is a cut, and its node posteriors sum to 1. (A row t is
    # NOT a cut: a path may emit several tokens at frame t and visit several of
    # its nodes; rows sum to 1 + expected emissions at frame t.)
    for n in range(T + U):
        on_diag = (t + u) == n
        torch.testing.assert_close(lat.node_posterior[on_diag].sum(), torch.tensor(1.0, dtype=torch.float64))
    # Each path leaves every frame by exactly one blank, and emits each token once.
    torch.testing.assert_close(lat.blank_posterior.sum(1), torch.ones(T, dtype=torch.float64))
    torch.testing.assert_close(lat.emit_posterior[:, :U].sum(0), torch.ones(U, dtype=torch.float64))
    torch.testing.assert_close(lat.node_posterior.sum(1), 1 + lat.emit_posterior.sum(1))
    assert (lat.emit_posterior[:, U] == 0).all()
    assert (lat.node_posterior >= 0).all() and (lat.node_posterior <= 1 + 1e-12).all()


@pytest.mark.parametrize("T,U", SHAPES)
def test_log_prob_from_alpha_equals_from_beta_and_loss(T, U):
    logits, tokens = random_lattice(T, U, blank=0, seed=U * 7 + T)
    blank_lp, emit_lp = utterance_lattice(logits, tokens, blank=0)
    lat = lattice_tables(blank_lp, emit_lp)
    from_alpha = lat.log_alpha[T - 1, U] + blank_lp[T - 1, U]  # then the final blank
    from_beta = lat.log_beta[0, 0]
    torch.testing.assert_close(from_alpha, from_beta)
    assert lat.log_prob == pytest.approx(float(from_beta), abs=1e-12)
    # alpha * beta / P at a node is its posterior (node (T-1, U) included).
    torch.testing.assert_close(lat.node_posterior, torch.exp(lat.log_alpha + lat.log_beta - lat.log_prob))
    loss = rnnt_loss(logits[None], tokens[None], torch.tensor([T]), torch.tensor([U]), blank=0, reduction="sum")
    assert float(loss) == pytest.approx(-lat.log_prob, abs=1e-10)


def test_posteriors_are_minus_the_loss_gradient():
    # With log-probs as input, d(loss)/d(log-prob of an edge) = -posterior of that edge.
    T, U, V = 6, 3, 5
    logits, tokens = random_lattice(T, U, V=V, seed=3)
    log_probs = torch.log_softmax(logits, -1).requires_grad_(True)
    loss = rnnt_loss(log_probs[None], tokens[None], torch.tensor([T]), torch.tensor([U]),
                     fused_log_softmax=False, reduction="sum")
    (grad,) = torch.autograd.grad(loss, log_probs)
    lat = lattice_tables(*utterance_lattice(log_probs.detach(), tokens, fused_log_softmax=False))
    torch.testing.assert_close(-grad[..., V - 1], lat.blank_posterior)
    emit_grad = torch.stack([grad[:, u, tokens[u]] for u in range(U)], 1)
    torch.testing.assert_close(-emit_grad, lat.emit_posterior[:, :U])


@pytest.mark.parametrize("T,U", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_viterbi_is_the_best_enumerated_path(T, U, seed):
    logits, tokens = random_lattice(T, U, blank=2, seed=seed * 100 + T + U)
    blank_lp, emit_lp = utterance_lattice(logits, tokens, blank=2)
    best_score, best_path = float("-inf"), None
    for path in alignment_paths(T, U):
        score = sum(float((blank_lp if k == "blank" else emit_lp)[t, u]) for t, u, k in path)
        if score > best_score:
            best_score, best_path = score, path
    ali = viterbi(blank_lp, emit_lp)
    assert ali.path == best_path
    assert ali.log_prob == pytest.approx(best_score, abs=1e-10)
    assert ali.token_frames == [t for t, u, k in best_path if k == "emit"] == token_frames(best_path)
    assert len(ali.nodes) == T + U and ali.nodes[0] == (0, 0) and ali.nodes[-1] == (T - 1, U)
    # The best path is one of the paths, so it cannot beat their sum.
    assert ali.log_prob <= lattice_tables(blank_lp, emit_lp).log_prob + 1e-12


# ---------------------------------------------------------------------------
# The readable loops equal the batched wavefront (emformer_edu.rnnt.loss_fast)
# ---------------------------------------------------------------------------

def random_batch(shapes, V=6, blank=-1, seed=0):
    """A padded batch holding one lattice per (T, U) in ``shapes``, float64: (blank_lp, emit_lp, ll, tl)."""
    g = torch.Generator().manual_seed(seed)
    B, T, U = len(shapes), max(t for t, _ in shapes), max(u for _, u in shapes)
    logits = torch.randn(B, T, U + 1, V, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(0, V - 1, (B, U), generator=g)
    targets += (targets >= blank % V).long()  # skip the blank index
    ll = torch.tensor([t for t, _ in shapes])
    tl = torch.tensor([u for _, u in shapes])
    return (*lattice_log_probs(logits, targets, ll, tl, blank=blank), ll, tl)


BATCH = SHAPES + [(1, 0)]  # padded to T = 12, U = 6; the last T = 1, U = 0 lattice is all padding but one node


@pytest.mark.parametrize("semiring", ["log", "max"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_readable_alpha_beta_equal_the_wavefront(semiring, seed):
    blank_lp, emit_lp, ll, tl = random_batch(BATCH, seed=seed)
    alpha, beta, log_prob = alpha_beta(blank_lp, emit_lp, ll, tl, semiring=semiring)
    for b, (T, U) in enumerate(BATCH):
        lattice = blank_lp[b, :T, :U + 1], emit_lp[b, :T, :U + 1]
        a, be = log_alpha(*lattice, semiring=semiring), log_beta(*lattice, semiring=semiring)
        assert a.shape == be.shape == (T, U + 1) and a.dtype == torch.float64
        torch.testing.assert_close(a, alpha[b, :T, :U + 1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(be, beta[b, :T, :U + 1], rtol=1e-12, atol=1e-12)
        # log P (or the best path's score) three ways: beta(0, 0), alpha(T-1, U) + final blank, the sink.
        torch.testing.assert_close(be[0, 0], log_prob[b], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(a[T - 1, U] + lattice[0][T - 1, U], log_prob[b], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(alpha[b, T, U], log_prob[b], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T,U", SHAPES)
def test_readable_alpha_and_beta_sum_over_the_enumerated_paths(T, U):
    logits, tokens = random_lattice(T, U, seed=5 * T + U)
    blank_lp, emit_lp = utterance_lattice(logits, tokens)
    scores = torch.tensor([lp for _, lp in path_log_probs(blank_lp, emit_lp)], dtype=torch.float64)
    for semiring, total in (("log", torch.logsumexp(scores, 0)), ("max", scores.max())):
        beta = log_beta(blank_lp, emit_lp, semiring=semiring)
        alpha = log_alpha(blank_lp, emit_lp, semiring=semiring)
        torch.testing.assert_close(beta[0, 0], total, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(alpha[T - 1, U] + blank_lp[T - 1, U], total, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_readable_viterbi_equals_the_wavefront_max_scores(seed):
    blank_lp, emit_lp, ll, tl = random_batch(BATCH, blank=0, seed=10 + seed)
    best_prefix, best_suffix, best = alpha_beta(blank_lp, emit_lp, ll, tl, semiring="max")
    for b, (T, U) in enumerate(BATCH):
        ali = viterbi(blank_lp[b, :T, :U + 1], emit_lp[b, :T, :U + 1])
        assert ali.log_prob == pytest.approx(float(best[b]), abs=1e-12)
        # The path's own edges add up to its score, and every node on it is on a best path:
        # best prefix into the node + best suffix out of it = the best score.
        edges = [(blank_lp if k == "blank" else emit_lp)[b, t, u] for t, u, k in ali.path]
        assert float(sum(edges)) == pytest.approx(ali.log_prob, abs=1e-12)
        for t, u in ali.nodes:
            assert float(best_prefix[b, t, u] + best_suffix[b, t, u]) == pytest.approx(ali.log_prob, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_readable_posteriors_equal_the_wavefront(seed):
    blank_lp, emit_lp, ll, tl = random_batch(BATCH, seed=20 + seed)
    post_blank, post_emit, log_prob = edge_posteriors(blank_lp, emit_lp, ll, tl)
    for b, (T, U) in enumerate(BATCH):
        lat = lattice_tables(blank_lp[b, :T, :U + 1], emit_lp[b, :T, :U + 1])
        assert lat.log_prob == pytest.approx(float(log_prob[b]), abs=1e-12)
        torch.testing.assert_close(lat.blank_posterior, post_blank[b, :T, :U + 1], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(lat.emit_posterior, post_emit[b, :T, :U + 1], rtol=1e-10, atol=1e-12)
        # Outside the utterance's lattice the wavefront has no probability at all.
        assert post_blank[b, T:].abs().sum() == 0 and post_blank[b, :, U + 1:].abs().sum() == 0


def test_readable_loops_are_fast_enough_for_the_notebooks():
    logits, tokens = random_lattice(100, 30, V=8, seed=0)
    blank_lp, emit_lp = utterance_lattice(logits, tokens)
    start = time.perf_counter()
    lat, ali = lattice_tables(blank_lp, emit_lp), viterbi(blank_lp, emit_lp)
    elapsed = time.perf_counter() - start
    assert lat.log_prob == pytest.approx(-float(rnnt_loss(logits[None], tokens[None], torch.tensor([100]),
                                                          torch.tensor([30]), reduction="sum")), abs=1e-9)
    assert len(ali.path) == 130
    assert elapsed < 2.0, f"alpha, beta, posteriors and Viterbi of a 100 x 31 lattice took {elapsed:.2f} s"


def test_unknown_semiring_raises():
    blank_lp, emit_lp = utterance_lattice(*random_lattice(3, 2))
    for fn in (log_alpha, log_beta):
        with pytest.raises(ValueError, match="semiring must be 'log' or 'max', got 'tropical'"):
            fn(blank_lp, emit_lp, semiring="tropical")
    with pytest.raises(ValueError, match="semiring must be 'log' or 'max'"):
        alpha_beta(blank_lp[None], emit_lp[None], torch.tensor([3]), torch.tensor([2]), semiring="tropical")


def test_viterbi_follows_a_clear_alignment():
    # Blank is likely everywhere except where we put the tokens: frames 1, 1, 4.
    T, U, V = 6, 3, 4
    tokens = [0, 2, 1]
    logits = torch.zeros(T, U + 1, V)
    logits[..., V - 1] = 5.0
    for u, t in enumerate([1, 1, 4]):
        logits[t, u, tokens[u]] = 10.0
    assert viterbi(*utterance_lattice(logits, tokens)).token_frames == [1, 1, 4]


def test_lattice_input_errors():
    with pytest.raises(ValueError, match=r"must be \(T, U\+1, V\)"):
        utterance_lattice(torch.randn(2, 3, 4, 5), [1, 2])
    with pytest.raises(ValueError, match="must not contain the blank"):
        utterance_lattice(torch.randn(3, 3, 5), [1, 4])
    with pytest.raises(ValueError, match=r"must both be \(T, U\+1\)"):
        viterbi(torch.zeros(3, 2), torch.zeros(3, 3))


def small_model(stride, right_context, dropout=0.1):
    torch.manual_seed(0)
    # torchaudio's own model: it also takes an R the stride does not divide (it floors it), which our config refuses.
    kw = {**dataclasses.asdict(small_config(dropout=dropout)), "time_reduction_stride": stride,
          "right_context_length": right_context}
    return torchaudio.models.emformer_rnnt_model(**kw)


def small_config(stride=2, right_context=2, dropout=0.1):
    return EmformerRNNTConfig.tiny(num_symbols=9).replace(
        input_dim=6, encoding_dim=12, segment_length=4, right_context_length=right_context,
        time_reduction_input_dim=4, time_reduction_stride=stride, transformer_ffn_dim=10,
        transformer_dropout=dropout, transformer_activation="relu", transformer_left_context_length=3,
        transformer_max_memory_size=0, transformer_tanh_on_mem=False, symbol_embedding_dim=7, num_lstm_layers=1,
        lstm_dropout=dropout)


@pytest.mark.parametrize("stride,right_context,T_in,tokens", [
    (2, 2, 20, [1, 2, 3, 4, 5]),
    (1, 0, 9, [0, 7, 7, 3]),
    (4, 2, 16, [5, 1, 6, 2, 2, 4, 3, 0]),  # more tokens than encoder frames
    (2, 2, 10, []),
])
def test_forced_align_gives_monotone_frames_inside_the_utterance(stride, right_context, T_in, tokens):
    model = small_model(stride, right_context).train()
    blank = 8
    features = torch.randn(T_in + right_context, 6)
    ali = forced_align(model, features, T_in, tokens, blank=blank)
    assert model.training  # mode restored
    T_enc = T_in // stride
    assert isinstance(ali, LatticeAlignment)
    assert ali.blank_lp.shape == (T_enc, len(tokens) + 1)
    assert len(ali.token_frames) == len(tokens) and len(ali.path) == T_enc + len(tokens)
    assert all(0 <= f < T_enc for f in ali.token_frames)
    assert ali.token_frames == sorted(ali.token_frames)
    # Deterministic (eval mode inside), and the same as Viterbi on the model's own joiner output.
    again = forced_align(model, features[None], torch.tensor(T_in), torch.tensor(tokens, dtype=torch.long), blank)
    assert again.path == ali.path
    model.eval()
    with torch.no_grad():
        enc, enc_len = model.transcribe(features[None], torch.tensor([T_in]))
        pred, pred_len, _ = model.predict(torch.tensor([[blank] + tokens]), torch.tensor([len(tokens) + 1]), None)
        joint, _, _ = model.join(enc, enc_len, pred, pred_len)
    assert viterbi(*utterance_lattice(joint[0, :T_enc], tokens, blank=blank)).path == ali.path


def test_forced_align_on_emformer_edu_model_matches_its_torchaudio_twin():
    import emformer_edu

    torch.manual_seed(1)
    edu = emformer_edu.emformer_rnnt_model(**dataclasses.asdict(small_config()))
    twin = emformer_edu.torchaudio_twin(edu)
    features = torch.randn(22, 6)
    ours = forced_align(edu, features, 20, [1, 2, 3, 4, 5], blank=8)
    theirs = forced_align(twin, features, 20, [1, 2, 3, 4, 5], blank=8)
    assert ours.path == theirs.path
    assert ours.log_prob == pytest.approx(theirs.log_prob, abs=1e-4)
