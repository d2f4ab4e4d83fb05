"""The image side of the HPSv2 loss (SBv2 Table 9): HPS of the decoded student image and its prompt.

The scorer is the evaluation's own (``sb2bench.evaluate.metrics.hps.hps_scores``: hpsv2's resize-and-pad
preprocessing, cosine x100), loaded the way the HPS benchmark loads it, so the loss optimises
exactly what Table 4/9 report. The HPS model is frozen; gradients flow through it and through the
decoder (shared with the CLIP loss) to x0.
"""
from __future__ import annotations

import torch

from sb2bench.evaluate.metrics.hps import hps_scores


class HpsScorer:
    def __init__(self, spec: str, version: str, checkpoint_dir: str | None, decoder):
        from sb2bench.evaluate.hps_benchmark import load_hps_model

        model, self.tokenizer = load_hps_model(spec, version, checkpoint_dir)
        self.model = model.eval().requires_grad_(False)
        self.decoder = decoder

    def to(self, device) -> HpsScorer:
        self.model.to(device)
        self.decoder.to(device)
        return self

    def scores(self, images01: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """HPS (x100) of decoded images in [0, 1] against their captions, differentiable in the images."""
        return hps_scores(self.model, self.tokenizer, images01, captions).float()
