"""CLIP score equals the hand-computed cosine; the shipped toy CLIP prefers matching captions."""
import numpy as np
import torch
from PIL import Image

from sb2bench.models import zoo
from sb2bench.evaluate.metrics.clip_score import clip_cosines
from sb2bench.toyworld import world


def test_clip_score_equals_hand_computed_cosine():
    clip = zoo.load_open_clip("toy:clip-toy")
    batch = world.make_dataset(11, 4)
    images = [Image.fromarray(x) for x in batch.images]
    got = clip_cosines(clip, images, batch.captions, prefix="A photo depicts ", batch_size=3)
    with torch.no_grad():
        pix = torch.stack([clip.preprocess(im) for im in images])
        a = clip.model.encode_image(pix)
        b = clip.model.encode_text(clip.tokenizer(["A photo depicts " + c for c in batch.captions]))
    expected = [float(a[i] @ b[i] / (a[i].norm() * b[i].norm())) for i in range(4)]
    assert np.allclose(got, expected, atol=1e-6)


def test_toy_clip_prefers_the_true_caption():
    clip = zoo.load_open_clip("toy:clip-toy")
    batch = world.render_batch(world.make_scenes(12, 64, mention_prob=1.0))
    images = [Image.fromarray(x) for x in batch.images]
    matched = clip_cosines(clip, images, batch.captions).mean()
    shuffled = clip_cosines(clip, images, batch.captions[1:] + batch.captions[:1]).mean()
    assert matched > shuffled + 0.05
