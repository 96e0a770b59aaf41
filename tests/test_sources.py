"""ganmetrics.sources / ganmetrics.imageio: every input kind → uint8 N×3×H×W batches."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ganmetrics.errors import InputError, SourceNotFoundError
from ganmetrics.sources import IMAGE_EXTENSIONS, ImageSource, decode_image, open_source, quantize


def rgb(seed: int, h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def collect(source: ImageSource) -> list[torch.Tensor]:
    """All images of a source as a list of [3, H, W] uint8 tensors (checking the batch contract)."""
    images = []
    for batch in source:
        assert isinstance(batch, torch.Tensor)  # mixed sizes come as runs of one size, never as lists
        assert batch.dtype == torch.uint8 and batch.ndim == 4 and batch.shape[1] == 3
        assert batch.is_contiguous()
        images.extend(batch)
    return images


def stacked(source: ImageSource) -> torch.Tensor:
    return torch.stack(collect(source))


def chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def write_png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit PNG (gray H×W, RGB or RGBA H×W×C) — Pillow cannot write 16-bit colour itself."""
    h, w = values.shape[:2]
    channels = 1 if values.ndim == 2 else values.shape[2]
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = values.astype(">u2").reshape(h, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def scale16(x: np.ndarray) -> np.ndarray:
    return np.round(x.astype(np.float64) * 255 / 65535).astype(np.uint8)


class Generator(nn.Module):
    """A tiny generator: z → tanh images, optionally class-conditional."""

    def __init__(self, z_dim: int = 8, num_classes: int = 0, channels: int = 3, size: int = 4) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.size, self.channels = z_dim, num_classes, size, channels
        self.fc = nn.Linear(z_dim, channels * size * size)
        self.embed = nn.Embedding(max(num_classes, 1), z_dim)
        self.labels_seen: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            self.labels_seen.append(labels)
            z = z + self.embed(labels)
        return torch.tanh(self.fc(z)).view(-1, self.channels, self.size, self.size)


# ---------------------------------------------------------------------------------------------
# quantize


def test_quantize_is_stylegan_formula():
    x = torch.linspace(-1.3, 1.3, 100_001)
    assert torch.equal(quantize(x), (x * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    y = torch.linspace(-0.1, 1.1, 10_001)
    assert torch.equal(quantize(y, (0, 1)), (y * 255 + 0.5).clamp(0, 255).to(torch.uint8))
    assert torch.equal(quantize(torch.tensor([0.0, 127.5, 254.49, 255.0]), (0, 255)),
                       torch.tensor([0, 128, 254, 255], dtype=torch.uint8))
    with pytest.raises(InputError, match="value_range"):
        quantize(x, (1, 1))
    with pytest.raises(InputError, match="float"):
        quantize(torch.zeros(3, dtype=torch.uint8))


def test_quantize_round_trip_of_uint8():
    u = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(quantize(u.float() / 127.5 - 1), u)
    assert torch.equal(quantize(u.float() / 255, (0, 1)), u)
    images = torch.from_numpy(rgb(0)).permute(2, 0, 1)[None].repeat(5, 1, 1, 1)
    assert torch.equal(stacked(open_source(images.float() / 127.5 - 1)), images)


# ---------------------------------------------------------------------------------------------
# folders


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A folder with mixed-case extensions, a subfolder, hidden entries and non-images."""
    root = tmp_path / "data"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    images = {"b.png": rgb(1), "A.PNG": rgb(2), "c.Bmp": rgb(3), "sub/z.png": rgb(4),
              "sub/deeper/a.TIFF": rgb(5), "sub-x.png": rgb(6)}
    for name, array in images.items():
        Image.fromarray(array).save(root / name)
    Image.fromarray(rgb(7)).save(root / ".hidden" / "h.png")
    Image.fromarray(rgb(8)).save(root / ".dot.png")
    (root / "notes.txt").write_text("not an image")
    return root, images


def test_folder_recursive_sorted_and_exact(tree):
    root, images = tree
    source = open_source(root, batch_size=4, num_workers=0)
    expected = sorted(images)  # relative POSIX paths, plain string order
    assert expected == ["A.PNG", "b.png", "c.Bmp", "sub-x.png", "sub/deeper/a.TIFF", "sub/z.png"]
    assert source.num_images == 6 and str(root.resolve()) in source.description
    got = stacked(source)
    assert torch.equal(got, torch.stack([chw(images[name]) for name in expected]))
    assert torch.equal(stacked(source), got)  # re-iterable
    assert all(len(batch) <= 4 for batch in source)


def test_folder_workers_and_num_samples(tree):
    root, _ = tree
    first = stacked(open_source(str(root), batch_size=2, num_workers=0))
    assert torch.equal(stacked(open_source(str(root), batch_size=2, num_workers=2)), first)
    capped = open_source(root, num_samples=4, batch_size=3, num_workers=0)
    assert capped.num_images == 4 and "first 4 of 6" in capped.description
    assert torch.equal(stacked(capped), first[:4])
    with pytest.raises(InputError, match="only 6 images"):
        open_source(root, num_samples=7)


def test_folder_mixed_sizes_give_same_size_runs(tmp_path):
    for i, (h, w) in enumerate([(8, 8), (8, 8), (6, 10), (8, 8)]):
        Image.fromarray(rgb(i, h, w)).save(tmp_path / f"{i}.png")
    batches = list(open_source(tmp_path, batch_size=2, num_workers=0))
    assert [tuple(b.shape) for b in batches] == [(2, 3, 8, 8), (1, 3, 6, 10), (1, 3, 8, 8)]
    assert torch.equal(batches[1][0], chw(rgb(2, 6, 10))) and torch.equal(batches[2][0], chw(rgb(3)))


# ---------------------------------------------------------------------------------------------
# decoding


def pil_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_decode_8bit_modes_equal_pil_convert(tmp_path):
    base = rgb(0, 12, 10)
    rgba = np.dstack([base, rgb(1, 12, 10)[..., 0]])
    cases = {
        "rgb.jpg": Image.fromarray(base), "gray.jpg": Image.fromarray(base).convert("L"),
        "cmyk.jpg": Image.fromarray(base).convert("CMYK"), "gray.png": Image.fromarray(base[..., 0]),
        "rgba.png": Image.fromarray(rgba), "palette.png": Image.fromarray(base).convert("P"),
        "la.png": Image.fromarray(base).convert("LA"), "bw.png": Image.fromarray(base).convert("1"),
        "rgb.webp": Image.fromarray(base), "rgb.bmp": Image.fromarray(base), "rgb.tif": Image.fromarray(base),
    }
    for name, image in cases.items():
        image.save(tmp_path / name)
        got = decode_image(tmp_path / name, name)
        assert got.dtype == np.uint8 and got.shape == (12, 10, 3), name
        np.testing.assert_array_equal(got, pil_rgb(tmp_path / name), err_msg=name)
        np.testing.assert_array_equal(decode_image((tmp_path / name).read_bytes(), name), got, err_msg=name)
    np.testing.assert_array_equal(decode_image(tmp_path / "rgba.png", "x"), base)  # alpha dropped, not composited
    np.testing.assert_array_equal(decode_image(tmp_path / "gray.png", "x"), np.repeat(base[..., :1], 3, axis=2))


def test_decode_16bit_scaled_not_clipped(tmp_path):
    values = np.random.default_rng(0).integers(0, 65536, (6, 7, 4)).astype(np.uint16)
    values[0, :4, 0] = [0, 128, 129, 65535]
    Image.fromarray(values[..., 0]).save(tmp_path / "gray16.png")  # Pillow writes I;16 itself
    with Image.open(tmp_path / "gray16.png") as image:
        assert image.mode == "I;16"
    expected_gray = np.repeat(scale16(values[..., :1]), 3, axis=2)
    np.testing.assert_array_equal(decode_image(tmp_path / "gray16.png", "g"), expected_gray)
    assert pil_rgb(tmp_path / "gray16.png").max() == 255 and not np.array_equal(pil_rgb(tmp_path / "gray16.png"),
                                                                                 expected_gray)
    write_png16(tmp_path / "rgb16.png", values[..., :3])
    write_png16(tmp_path / "rgba16.png", values)
    for name in ("rgb16.png", "rgba16.png"):
        np.testing.assert_array_equal(decode_image(tmp_path / name, name), scale16(values[..., :3]), err_msg=name)
    # 32-bit integer and float images
    Image.fromarray(values[..., 0].astype(np.int32)).save(tmp_path / "i32.tif")
    np.testing.assert_array_equal(decode_image(tmp_path / "i32.tif", "i"), expected_gray)
    floats = np.array([[0.2, 127.5, 300.0, -4.0]], dtype=np.float32)
    Image.fromarray(floats).save(tmp_path / "f32.tif")
    np.testing.assert_array_equal(decode_image(tmp_path / "f32.tif", "f")[..., 0], [[0, 128, 255, 0]])


def test_decode_errors_name_the_file(tmp_path, monkeypatch):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.png.*empty \(0 bytes\)"):
        decode_image(tmp_path / "empty.png", str(tmp_path / "empty.png"))
    with pytest.raises(InputError, match=r"member\.png.*empty"):
        decode_image(b"", "archive.zip:member.png")
    (tmp_path / "junk.jpg").write_bytes(b"this is not a jpeg at all")
    with pytest.raises(InputError, match=r"junk\.jpg.*cannot decode"):
        decode_image(tmp_path / "junk.jpg", str(tmp_path / "junk.jpg"))
    Image.fromarray(rgb(0, 64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    with pytest.raises(InputError, match="cut.png.*cannot decode"):
        decode_image(data[: len(data) // 2], "cut.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 px: a "bomb" warning; > 2000: an error
    with pytest.raises(InputError, match="full.png.*MAX_IMAGE_PIXELS"):
        decode_image(tmp_path / "full.png", "full.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    with pytest.raises(InputError, match="full.png.*MAX_IMAGE_PIXELS"):
        decode_image(tmp_path / "full.png", "full.png")


def test_corrupt_file_in_worker_surfaces_in_main_process(tmp_path):
    for i in range(6):
        Image.fromarray(rgb(i)).save(tmp_path / f"{i}.png")
    (tmp_path / "4.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    source = open_source(tmp_path, batch_size=2, num_workers=2)
    with pytest.raises(InputError, match=r"4\.png.*cannot decode") as info:
        list(source)
    assert type(info.value) is InputError and "DataLoader worker" not in str(info.value)
    (tmp_path / "4.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"4\.png.*0 bytes"):
        list(open_source(tmp_path, batch_size=2, num_workers=2))


# ---------------------------------------------------------------------------------------------
# zip archives


def test_zip_matches_folder_rules(tree, tmp_path):
    root, images = tree
    archive = tmp_path / "images.ZIP"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in sorted(images, reverse=True):  # stored out of order
            zf.write(root / name, name)
        zf.write(root / ".dot.png", "__MACOSX/._b.png")
        zf.writestr("sub/", b"")
        zf.writestr("readme.txt", b"hi")
    source = open_source(archive, batch_size=4, num_workers=2)
    assert source.num_images == 6 and "zip" in source.description
    assert torch.equal(stacked(source), stacked(open_source(root, num_workers=0)))
    assert torch.equal(stacked(open_source(archive, num_samples=2, num_workers=0)),
                       torch.stack([chw(images["A.PNG"]), chw(images["b.png"])]))


@pytest.mark.parametrize("member", ["../evil.png", "a/../../evil.png", "/abs/evil.png", "C:/evil.png"])
def test_zip_unsafe_members_refused(tmp_path, member):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", b"x")
        zf.writestr(member, b"x")
    with pytest.raises(InputError, match=r"bad\.zip.*refusing.*'\.\.'"):
        open_source(archive)


def test_zip_errors(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"fake\.zip.*not a readable zip"):
        open_source(tmp_path / "fake.zip")
    with zipfile.ZipFile(tmp_path / "txt.zip", "w") as zf:
        zf.writestr("a.txt", b"x")
    with pytest.raises(InputError, match=r"txt\.zip has no image files.*\.png"):
        open_source(tmp_path / "txt.zip")
    with zipfile.ZipFile(tmp_path / "broken.zip", "w") as zf:
        zf.writestr("a.png", b"")
    with pytest.raises(InputError, match=r"broken\.zip:a\.png.*0 bytes"):
        list(open_source(tmp_path / "broken.zip", num_workers=0))


# ---------------------------------------------------------------------------------------------
# npz / npy files and numpy arrays


def test_npy_and_npz_files(tmp_path):
    images = np.stack([rgb(i) for i in range(5)])
    expected = torch.from_numpy(images).permute(0, 3, 1, 2)
    np.save(tmp_path / "a.npy", images)
    np.savez(tmp_path / "single.npz", whatever=images)
    with open(tmp_path / "keyed.NPZ", "wb") as f:  # np.savez would append ".npz" to a name ending in ".NPZ"
        np.savez_compressed(f, labels=np.arange(5), images=images)
    for name in ("a.npy", "single.npz", "keyed.NPZ"):
        source = open_source(tmp_path / name, batch_size=2)
        assert source.num_images == 5 and [len(b) for b in source] == [2, 2, 1]
        assert torch.equal(stacked(source), expected), name
    np.save(tmp_path / "gray.npy", images[..., 0])
    assert torch.equal(stacked(open_source(tmp_path / "gray.npy")), expected[:, :1].expand(-1, 3, -1, -1))
    np.save(tmp_path / "rgba.npy", np.concatenate([images, images[..., :1]], axis=3))
    assert torch.equal(stacked(open_source(tmp_path / "rgba.npy", num_samples=3)), expected[:3])


def test_npz_npy_errors(tmp_path):
    np.savez(tmp_path / "stats.npz", mu=np.zeros(4), sigma=np.eye(4))
    with pytest.raises(InputError, match=r"stats\.npz holds statistics \(mu, sigma\), not images"):
        open_source(tmp_path / "stats.npz")
    np.savez(tmp_path / "many.npz", a=np.zeros((2, 4, 4, 3), np.uint8), b=np.zeros(2))
    with pytest.raises(InputError, match=r"many\.npz holds arrays \['a', 'b'\]"):
        open_source(tmp_path / "many.npz")
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy.*allow_pickle=False"):
        open_source(tmp_path / "obj.npy")
    np.savez(tmp_path / "objz.npz", images=np.array([None, 1], dtype=object))
    with pytest.raises(InputError, match=r"objz\.npz.*allow_pickle=False"):
        open_source(tmp_path / "objz.npz")
    np.save(tmp_path / "int.npy", np.zeros((2, 4, 4, 3), np.int32))
    with pytest.raises(InputError, match="int32"):
        open_source(tmp_path / "int.npy")


def test_numpy_arrays():
    images = np.stack([rgb(i) for i in range(4)])
    expected = torch.from_numpy(images).permute(0, 3, 1, 2)
    assert torch.equal(stacked(open_source(images)), expected)
    assert torch.equal(stacked(open_source(images.astype(np.float32) / 255, value_range=(0, 1))), expected)
    assert torch.equal(stacked(open_source(images.astype(np.float64) / 127.5 - 1)), expected)
    assert torch.equal(stacked(open_source(images.astype(">u2") * 257)), expected)  # big-endian 16-bit
    assert torch.equal(stacked(open_source(np.asfortranarray(images))), expected)
    with pytest.raises(InputError, match="int32"):
        open_source(images.astype(np.int32))
    with pytest.raises(InputError, match=r"\(4, 3, 8, 8\).*channels-first.*transpose"):
        open_source(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    with pytest.raises(InputError, match=r"\(8, 8, 3\), a single H×W×C image"):
        open_source(images[0])
    with pytest.raises(InputError, match=r"\(4, 8, 8, 3, 1\)"):
        open_source(images[..., None])
    with pytest.raises(InputError, match=r"\[0, 255\].*\(-1, 1\).*value_range=\(0, 255\)"):
        open_source(images.astype(np.float32))
    with pytest.raises(InputError, match="no images"):
        open_source(images[:0])


# ---------------------------------------------------------------------------------------------
# tensors


def test_tensors():
    images = torch.from_numpy(np.stack([rgb(i) for i in range(5)])).permute(0, 3, 1, 2).contiguous()
    source = open_source(images, batch_size=2, device="cpu")
    assert source.num_images == 5 and [len(b) for b in source] == [2, 2, 1]
    assert torch.equal(stacked(source), images)
    assert torch.equal(stacked(open_source(images[:, :1])), images[:, :1].expand(-1, 3, -1, -1))
    assert torch.equal(stacked(open_source(torch.cat([images, images[:, :1]], 1))), images)  # RGBA: alpha dropped
    assert torch.equal(stacked(open_source(images.double() / 255, value_range=(0, 1))), images)
    assert torch.equal(stacked(open_source((images.float() / 127.5 - 1).half())), images)
    assert torch.equal(stacked(open_source(images, num_samples=3)), images[:3])
    grad = (images.float() / 127.5 - 1).requires_grad_()
    assert torch.equal(stacked(open_source(grad)), images)
    assert torch.equal(stacked(open_source(images.float() / 127.5 - 1.005)), (images.float() / 127.5 - 1.005).mul(
        127.5).add(128).clamp(0, 255).to(torch.uint8))  # 0.5 % outside: tolerated, clamped


def test_uint16_tensor_is_scaled():
    uint16 = getattr(torch, "uint16", None)
    if uint16 is None:
        pytest.skip("torch without uint16")
    values = torch.tensor([0, 128, 129, 257, 65535], dtype=torch.int32).view(1, 1, 1, 5)
    got = stacked(open_source(values.to(uint16)))[0, 0, 0]
    assert got.tolist() == [0, 0, 1, 1, 255]


def test_tensor_errors():
    x = torch.rand(4, 3, 8, 8)
    with pytest.raises(InputError, match=r"\[-4, 4\].*expected value_range \(-1, 1\).*value_range=.*uint8"):
        open_source(torch.linspace(-4, 4, 4 * 3 * 8 * 8).view(4, 3, 8, 8))
    with pytest.raises(InputError, match=r"\[0, 2.*value_range=\(0, 255\)"):
        open_source(torch.tensor([0.0, 2.0, 200.0]).view(1, 1, 1, 3))
    with pytest.raises(InputError, match="NaN"):
        open_source(torch.full((1, 3, 2, 2), float("nan")))
    with pytest.raises(InputError, match=r"int32 tensor has dtype torch\.int32"):
        open_source(torch.zeros(2, 3, 4, 4, dtype=torch.int32))
    with pytest.raises(InputError, match=r"float32 tensor has shape \(3, 8, 8\), a single C×H×W image"):
        open_source(x[0])
    with pytest.raises(InputError, match=r"\(4, 2, 8, 8\).*C \(dim 1\) in 1, 3, 4"):
        open_source(x[:, :2])
    with pytest.raises(InputError, match=r"\(4, 8, 8, 3\).*channels-last.*permute"):
        open_source(x.permute(0, 2, 3, 1))
    with pytest.raises(InputError, match=r"\(2, 4, 8\)"):
        open_source(torch.zeros(2, 4, 8, dtype=torch.uint8))
    with pytest.warns(UserWarning, match=r"value_range=\(0, 1\)"):
        open_source(x)  # [0, 1] data with the default (-1, 1): probably a ToTensor() mistake


# ---------------------------------------------------------------------------------------------
# DataLoaders and iterables


def test_dataloader_of_tuples_split_and_capped():
    images = torch.from_numpy(np.stack([rgb(i) for i in range(10)])).permute(0, 3, 1, 2).contiguous()
    loader = DataLoader(TensorDataset(images.float() / 127.5 - 1, torch.arange(10)), batch_size=6)
    source = open_source(loader, batch_size=4)
    assert source.num_images is None and "DataLoader" in source.description
    assert [len(b) for b in source] == [4, 2, 4]
    assert torch.equal(stacked(source), images)
    capped = open_source(loader, num_samples=7, batch_size=4)
    assert capped.num_images == 7 and [len(b) for b in capped] == [4, 2, 1]
    assert torch.equal(stacked(capped), images[:7])
    with pytest.raises(InputError, match="only 10 images but num_samples=11"):
        list(open_source(loader, num_samples=11))


def test_iterables_of_arrays_dicts_and_lists():
    images = np.stack([rgb(i) for i in range(4)])
    expected = torch.from_numpy(images).permute(0, 3, 1, 2)
    assert torch.equal(stacked(open_source([images[:3], images[3:]])), expected)
    assert torch.equal(stacked(open_source([{"img": expected[:2], "label": 0}, {"image": expected[2:]}])), expected)
    assert torch.equal(stacked(open_source([[images[:2], None], (images[2:],)])), expected)
    mixed = [expected[0], torch.from_numpy(rgb(9, 6, 4)).permute(2, 0, 1)]
    batches = list(open_source([mixed]))
    assert [tuple(b.shape) for b in batches] == [(1, 3, 8, 8), (1, 3, 6, 4)] and torch.equal(batches[1][0], mixed[1])
    source = open_source(expected)
    assert torch.equal(stacked(open_source(source, num_samples=3, batch_size=2)), expected[:3])  # ImageSource in
    one_shot = open_source(iter([expected]))
    assert torch.equal(stacked(one_shot), expected)
    with pytest.raises(InputError, match="one-shot iterator"):
        list(one_shot)


def test_iterable_errors():
    with pytest.raises(InputError, match=r"batch 1 of list of batches.*keys \['label'\]"):
        list(open_source([torch.zeros(1, 3, 2, 2, dtype=torch.uint8), {"label": 1}]))
    with pytest.raises(InputError, match=r"batch 0 .*whose first element is a str"):
        list(open_source([("a", "b")]))
    with pytest.raises(InputError, match=r"batch 0 .*\[255, 255\].*value_range=\(0, 255\)"):
        list(open_source([torch.full((1, 3, 2, 2), 255.0)]))
    with pytest.raises(InputError, match="yielded no images"):
        list(open_source([]))
    with pytest.raises(InputError, match="cannot read images from an int"):
        open_source(3)


# ---------------------------------------------------------------------------------------------
# generators


def test_generator_module_seeded_and_reiterable():
    torch.manual_seed(0)
    G = Generator()
    G.train()
    source = open_source(G, num_samples=20, batch_size=7, seed=3)
    assert source.num_images == 20 and "Generator" in source.description
    assert [len(b) for b in source] == [7, 7, 6]
    first = stacked(source)
    assert torch.equal(stacked(source), first)  # re-iteration redraws the same latents
    assert torch.equal(stacked(open_source(G, num_samples=20, batch_size=7, seed=3)), first)
    assert not torch.equal(stacked(open_source(G, num_samples=20, batch_size=7, seed=4)), first)
    assert G.training  # the caller's train/eval mode is left alone
    # the documented recipe: all latents first, from Generator().manual_seed(seed), cut into batches; so another
    # batch size feeds G the same latents (compared batch by batch: a GEMM may round differently by batch shape)
    latents = torch.randn(20, 8, generator=torch.Generator().manual_seed(3))
    for batch_size, cuts in ((7, (0, 7, 14, 20)), (16, (0, 16, 20))):
        with torch.no_grad():
            manual = torch.cat([quantize(G(latents[a:b])) for a, b in zip(cuts, cuts[1:])])
        assert torch.equal(stacked(open_source(G, num_samples=20, batch_size=batch_size, seed=3)), manual)


def test_generator_callable_conditional_and_channels():
    def G(z):
        return torch.tanh(z[:, :12].reshape(-1, 3, 2, 2))

    with pytest.raises(InputError, match="pass z_dim="):
        open_source(G, num_samples=4)
    assert stacked(open_source(G, num_samples=5, z_dim=16, batch_size=2)).shape == (5, 3, 2, 2)
    conditional = Generator(num_classes=5)
    assert stacked(open_source(conditional, num_samples=9, batch_size=4)).shape == (9, 3, 4, 4)
    labels = torch.cat(conditional.labels_seen)
    assert labels.dtype == torch.int64 and labels.shape == (9,) and 0 <= labels.min() and labels.max() < 5
    gray = Generator(channels=1)
    out = stacked(open_source(gray, num_samples=3, z_dim=8))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])

    seen = []

    def styleganish(z, c):
        seen.append(c)
        return torch.zeros(len(z), 3, 2, 2)

    styleganish.z_dim, styleganish.c_dim = 4, 3
    assert stacked(open_source(styleganish, num_samples=2)).eq(128).all()
    assert seen[0].shape == (2, 3) and seen[0].sum(1).eq(1).all()  # one-hot labels


def test_generator_errors():
    G = Generator()
    with pytest.raises(InputError, match="num_samples="):
        open_source(G)

    def bad(output):
        return lambda z: output(z)

    cases = [
        (lambda z: torch.zeros(len(z), 3, 4), r"shape \(\d+, 3, 4\)|\[\d+, 3, 4\]"),
        (lambda z: torch.zeros(len(z), 2, 4, 4), r"C \(dim 1\)"),
        (lambda z: torch.zeros(len(z) + 1, 3, 4, 4), r"returned 5 images .* for 4 latents"),
        (lambda z: torch.full((len(z), 3, 4, 4), float("nan")), "NaN"),
        (lambda z: (torch.zeros(len(z), 3, 4, 4), None), "returned a tuple"),
        (lambda z: torch.zeros(len(z), 3, 4, 4, dtype=torch.uint8), "dtype torch.uint8"),
    ]
    for output, message in cases:
        with pytest.raises(InputError, match=message):
            list(open_source(bad(output), num_samples=4, z_dim=2))


# ---------------------------------------------------------------------------------------------
# paths and arguments


def test_path_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceNotFoundError, match="missing"):
        open_source(tmp_path / "missing")
    with pytest.raises(SourceNotFoundError):
        open_source("some/where")
    with pytest.raises(SourceNotFoundError):
        open_source("images.zip")
    with pytest.raises(InputError, match="'cifar-ten': no such file or folder") as info:
        open_source("cifar-ten")
    assert not isinstance(info.value, SourceNotFoundError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"folder .*empty is empty.*\.png, \.jpg"):
        open_source(tmp_path / "empty")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"texts has no image files.*\.tiff"):
        open_source("texts")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"a\.txt is a file but not"):
        open_source(tmp_path / "a.txt")


def test_argument_checks(tmp_path):
    x = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    for kwargs, message in [({"batch_size": 0}, "batch_size"), ({"num_samples": 0}, "num_samples"),
                            ({"num_samples": 3}, "only 2 images"), ({"value_range": (1, -1)}, "value_range"),
                            ({"num_workers": -1}, "num_workers")]:
        with pytest.raises(InputError, match=message):
            open_source(x, **kwargs)


def test_extensions_constant():
    assert IMAGE_EXTENSIONS == (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
