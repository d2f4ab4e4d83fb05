"""VSD training of a one-step student (SwiftBrush v1/v2): ``run(config, out_dir) -> student folder``.

Modules, one job each: config (the run config and its defaults), student (t = 999 one-step UNet),
teacher (frozen + LoRA teacher in one UNet), losses (VSD, LoRA denoising, CLIP, HPS, regulariser,
schedules), clip_guidance (decoder + open_clip for the CLIP loss), hps_guidance (HPS scorer for the
optional HPSv2 loss), regularisation (the optional DMD-style pairs and their builder), step (one
training iteration), diagnostics (drift diagnostics: LoRA vs frozen teacher on fresh student
samples, the update's cosine with the guidance term), embeddings (cached text embeddings), checkpoint, extend (a
longer run that adopts a finished run's checkpoints), ema, runlog, samples, export,
trainer (the loop), warmup (the LoRA-teacher warm-up that runs of one warm-up key share), distributed (gradient averaging and rank-0 duties under N processes), launch
(the ``accelerate launch`` command of N processes), cli.
"""
from sb2bench.train.config import TOY_OVERRIDES, TrainConfig

__all__ = ["run", "TrainConfig", "TOY_OVERRIDES", "NonFiniteError"]


def __getattr__(name: str):
    """``run`` and ``NonFiniteError`` load torch and diffusers; import them only when used, so the
    workflow can read run configs (TrainConfig) without that cost."""
    if name == "run":
        from sb2bench.train.trainer import run

        return run
    if name == "NonFiniteError":
        from sb2bench.train.step import NonFiniteError

        return NonFiniteError
    raise AttributeError(f"module 'sb2bench.train' has no attribute {name!r}")
