"""transcribe and transcribe_streaming of emformer_rnnt_base: emformer_edu vs torchaudio, same weights.

Run:  .venv/bin/python benchmarks/bench_transcribe.py
Both models hold identical weights (torchaudio_twin); outputs are checked equal before timing.
Targets: ratio edu/torchaudio <= 1.0 for both (the encoder performs torchaudio's tensor operations).
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import emformer_edu  # noqa: E402
from paired import paired_ratio, report  # noqa: E402


def main() -> int:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    edu = emformer_edu.emformer_rnnt_base(num_symbols=4097).eval()
    ta = emformer_edu.torchaudio_twin(edu)
    seg, R = edu.config.segment_length, edu.config.right_context_length

    x = torch.randn(1, 400 + R, 80)  # 4 s of 10 ms frames plus right context
    lengths = torch.tensor([400 + R])
    chunk, chunk_lengths = emformer_edu.streaming_chunks(x, seg, R)[0]
    with torch.inference_mode():
        assert torch.equal(edu.transcribe(x, lengths)[0], ta.transcribe(x, lengths)[0])
        state_e = edu.transcribe_streaming(chunk, chunk_lengths, None)[2]
        state_t = ta.transcribe_streaming(chunk, chunk_lengths, None)[2]
        full = report("transcribe, base, 1 x 4 s",
                      paired_ratio(lambda: edu.transcribe(x, lengths), lambda: ta.transcribe(x, lengths), reps=15),
                      target=1.0)
        # Per chunk, on a warm state (after one chunk), as in steady-state streaming.
        stream = report("transcribe_streaming per chunk, base",
                        paired_ratio(lambda: edu.transcribe_streaming(chunk, chunk_lengths, state_e),
                                     lambda: ta.transcribe_streaming(chunk, chunk_lengths, state_t), reps=60),
                        target=1.0)
    return 0 if full and stream else 1


if __name__ == "__main__":
    sys.exit(main())
