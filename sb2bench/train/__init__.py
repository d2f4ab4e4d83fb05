"""VSD training of a one-step student (SwiftBrush v1/v2): ``run(config, out_dir) -> student folder``.

Modules, one job each: config (the run config and its defaults), student (t = 999 one-step UNet),
teacher (frozen + LoRA teacher in one UNet), losses (VSD, LoRA denoising, CLIP, schedules),
clip_guidance (decoder + open_clip for the CLIP loss), step (one training iteration), embeddings
(cached text embeddings), checkpoint, ema, runlog, samples, export, trainer (the loop), cli.
"""
from sb2bench.train.config import TOY_OVERRIDES, TrainConfig
from sb2bench.train.step import NonFiniteError
from sb2bench.train.trainer import run

__all__ = ["run", "TrainConfig", "TOY_OVERRIDES", "NonFiniteError"]
