"""The FID feature network: clean-fid's Inception from a local file (stub), or the toy Inception."""
import numpy as np
import pytest
import torch
from PIL import Image

from sb2bench.models import zoo
from sb2bench.evaluate.metrics.features import CLEANFID_FILE, load_feature_net
from sb2bench.evaluate.metrics.fid import folder_features


def test_cleanfid_inception_from_local_file(stub_inception, tmp_path):
    net = load_feature_net(str(stub_inception))
    assert not net.native_size and "InceptionV3W" in net.description
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        Image.new("RGB", (64, 48), colour).save(folder / f"{i:06d}.png")
    feats = folder_features(folder, net.extractor, native_size=net.native_size)
    assert feats.shape == (2, 2048)
    # RGB order and clean-fid's (x - 128) / 128 normalisation: features 0-15 pool red, 32-47 blue
    assert feats[0, 0] == pytest.approx((255 - 128) / 128, abs=0.02) and feats[0, 32] == pytest.approx(-1, abs=0.01)
    assert feats[1, 32] == pytest.approx((255 - 128) / 128, abs=0.02)


def test_cleanfid_inception_matches_cleanfids_wrapper_and_takes_the_networks_width(stub_inception,
                                                                                   narrow_stub_inception):
    """On a 2048-d network (the real file's width) the features are bit-identical to clean-fid's own
    InceptionV3W; a narrower network keeps its own width (the end-to-end tests' cheap stand-in)."""
    from cleanfid.inception_torchscript import InceptionV3W

    x = torch.rand(3, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 255
    ours = load_feature_net(str(stub_inception)).extractor
    with torch.no_grad():
        assert torch.equal(ours(x), InceptionV3W(str(stub_inception.parent), download=False).eval()(x))
        assert ours(x).shape == (3, 2048)
        narrow = load_feature_net(str(narrow_stub_inception)).extractor(x)
        assert narrow.shape == (3, 64) and torch.equal(narrow, ours(x)[:, :64])
    with pytest.raises(ValueError, match="299 x 299"):
        ours(torch.zeros(1, 3, 64, 64))


def test_renamed_cleanfid_file_and_missing_file_are_named(stub_inception, tmp_path):
    renamed = stub_inception.parent / "incep.pt"
    stub_inception.rename(renamed)
    with pytest.raises(zoo.ModelNotFoundError, match=CLEANFID_FILE):
        load_feature_net(str(renamed))
    with pytest.raises(zoo.ModelNotFoundError, match="does not exist"):
        load_feature_net(str(tmp_path / "nowhere" / CLEANFID_FILE))


def test_toy_inception_reads_native_size():
    net = load_feature_net("toy:inception-toy")
    assert net.native_size
    out = net.extractor(torch.full((2, 3, 32, 32), 128.0))
    assert out.ndim == 2 and np.isfinite(out.detach().numpy()).all()
