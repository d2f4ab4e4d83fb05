"""HPSv2 reimplementation: the documented preprocessing and the cosine score."""
import pytest
import torch
import torch.nn.functional as F

from sb2bench.models import zoo
from sb2bench.evaluate.metrics.hps import hps_preprocess, hps_scores, load_hps_checkpoint, resize_longest_and_pad


def test_resize_longest_side_and_centre_pad():
    img = torch.rand(1, 3, 100, 50)
    out = resize_longest_and_pad(img, 224)
    assert out.shape == (1, 3, 224, 224)
    assert torch.all(out[..., :, :56] == 0) and torch.all(out[..., :, 56 + 112:] == 0)  # 112 wide, centred
    inner = out[..., :, 56:168]
    expected = F.interpolate(img, size=(224, 112), mode="bicubic", antialias=True, align_corners=False)
    assert torch.allclose(inner, expected)


def test_preprocess_normalises_with_openai_statistics():
    img = torch.full((1, 3, 224, 224), 0.5)
    out = hps_preprocess(img)
    assert out[0, 0, 0, 0] == pytest.approx((0.5 - 0.48145466) / 0.26862954)


def test_score_is_hundred_times_cosine_and_checkpoint_round_trip(tmp_path):
    clip = zoo.load_open_clip("toy:clip-toy")
    images = torch.rand(3, 3, 40, 24)
    prompts = ["a red circle", "a blue square", "a green triangle"]
    with torch.no_grad():
        got = hps_scores(clip.model, clip.tokenizer, images, prompts)  # toy CLIP input size: 32
        assert torch.equal(got, hps_scores(clip.model, clip.tokenizer, images, prompts, size=32))
    with torch.no_grad():
        a = clip.model.encode_image(hps_preprocess(images, 32))
        b = clip.model.encode_text(clip.tokenizer(prompts))
    assert torch.allclose(got, 100 * F.cosine_similarity(a, b), atol=1e-4)

    ckpt = tmp_path / "HPS_v2_compressed.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in clip.model.state_dict().items()}}, ckpt)
    fresh = zoo.load_open_clip("toy:clip-toy").model
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    load_hps_checkpoint(fresh, ckpt)
    with torch.no_grad():
        assert torch.allclose(hps_scores(fresh, clip.tokenizer, images, prompts, size=32), got)
    with pytest.raises(FileNotFoundError, match="xswu/HPSv2"):
        load_hps_checkpoint(fresh, tmp_path / "missing.pt")
