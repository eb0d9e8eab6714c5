#!/usr/bin/env python3
"""Golden vectors for lib/image (read by test/image.test.ts).

1. Pixel tensors from the released preprocessing: HealthGPT's expand2square (llava/demo/utils.py;
   background tuple(int(x*255) for x in image_mean): int() TRUNCATES, giving (122, 116, 104);
   rounding would give (123, 117, 104)) followed by transformers' PIL CLIPImageProcessor with
   openai/clip-vit-large-patch14-336's preprocessor config (shortest_edge 336, bicubic, centre crop
   336, rescale 1/255, CLIP mean/std, convert RGB). Smaller sizes stand in for 336 in some cases
   (the size is a parameter of the pipeline for tiny test models). HealthGPT's gen_infer.py prepares
   the input image of generation tasks the same way (only the vision tower's select layer differs).

   Each reference tensor is stored losslessly and compactly: every value the processor outputs is
   norm[c][u] for the channel c and the 8-bit pixel u it came from (rescale and normalise are
   per-channel maps of a uint8), so we store u (uint8, CHW, gzip) and norm (3 x 256 f32, from the
   processor itself); the script asserts that norm[c][u] reproduces the processor's float32 output
   bit for bit.

2. 16-bit grayscale: PIL opens it as mode I;16 and convert('RGB') CLIPS every value above 255 to
   255 (a nearly white image), so the released pipeline is no reference for it. lib/image scales
   16 bits to 8 with round(v / 257); the case here applies that rule and then the reference pipeline.

3. DICOM files written with pydicom, and the 8-bit image lib/image must make of each, computed here
   with numpy from pydicom's own decoding (pixel_array, apply_modality_lut) and cross-checked against
   pydicom's apply_windowing. Rule: stored value -> slope/intercept -> VOI window (caller's, else
   the file's first, else the frame's min..max) mapped to 0..255, rounded half up; MONOCHROME1
   inverted; RGB passed through.

4. The VQGAN encoder's input (idx2img.img2idx: Lanczos to 256 x 256, 2x - 1), 48 standing in.

5. A decoder-output image (64 x 64 standing in for 256 x 256): HealthGPT's idx2img (clamp to [-1, 1], (x + 1) / 2, * 255,
   astype(uint8)) on a float32 CHW tensor, for the PNG writer.

Outputs test/fixtures/image/: the input images, *.u8.gz tensors, norm.f32, cases.json.
Byte-for-byte reproducible (fixed seeds, gzip mtime 0).

Pinned: transformers 5.23.0, pillow 13.0.0, numpy 2.4.6, pydicom 3.0.2 (torch not needed). Regenerate
(from the repository root):
  python3 -m venv /opt/ref-venv && /opt/ref-venv/bin/pip install transformers==5.23.0 pillow==13.0.0 numpy==2.4.6 pydicom==3.0.2
  /opt/ref-venv/bin/python tools/reference/make_image_reference.py
"""
import gzip
import json
import os

import numpy as np
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut, convert_color_space
from pydicom.pixels.processing import apply_windowing
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

OUT = os.path.join("test", "fixtures", "image")
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def processor(size):
    # openai/clip-vit-large-patch14-336's preprocessor_config.json, with 336 as a parameter
    return CLIPImageProcessorPil(
        do_resize=True, size={"shortest_edge": size}, resample=Image.BICUBIC,
        do_center_crop=True, crop_size={"height": size, "width": size},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=CLIP_MEAN, image_std=CLIP_STD, do_convert_rgb=True)


def expand2square(img, background):
    # HealthGPT llava/demo/utils.py, restated
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), background)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out


BACKGROUND = tuple(int(x * 255) for x in CLIP_MEAN)
assert BACKGROUND == (122, 116, 104)


def norm_table():
    # every uint8 value of every channel through the processor's own rescale + normalise
    ramp = np.tile(np.arange(256, dtype=np.uint8), (1, 1))
    img = Image.fromarray(np.stack([ramp] * 3, axis=-1))
    p = processor(1)
    t = p.preprocess(img, do_resize=False, do_center_crop=False, return_tensors="np")["pixel_values"][0]
    assert t.dtype == np.float32 and t.shape == (3, 1, 256)
    return t[:, 0, :]


def save_gz(path, data: bytes):
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(data)


def pattern(w, h, seed, channels=3, noise=12):
    # smooth ramps, sharp block edges and a little noise: stresses the resampler, compresses well
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    planes = [
        (x * 255 // max(w - 1, 1)),
        np.where(((x // 7) + (y // 5)) % 2 == 0, 230, 20),
        (128 + 100 * np.sin(x / 3.0 + y / 5.0)).astype(np.int64),
        (y * 255 // max(h - 1, 1)),
    ][:channels]
    a = np.stack(planes, axis=-1) + rng.integers(-noise, noise + 1, size=(h, w, channels))
    return np.clip(a, 0, 255).astype(np.uint8)


def reference_tensor(img, size, pad, norm):
    if pad:
        img = expand2square(img.convert("RGB"), BACKGROUND)
    t = processor(size).preprocess(img, return_tensors="np")["pixel_values"][0]
    assert t.shape == (3, size, size) and t.dtype == np.float32
    # lossless u8 encoding: find u with norm[c][u] == t bit for bit
    u = np.empty(t.shape, dtype=np.uint8)
    for c in range(3):
        lut = norm[c]
        idx = np.clip(np.searchsorted(lut, t[c]), 0, 255)  # the table increases with u
        assert np.array_equal(lut[idx], t[c]), "reference value not on the normalisation table"
        u[c] = idx
    return u


def image_cases(norm):
    cases = []

    def add(name, file, size, pad=True, ref_img=None, note=""):
        img = ref_img if ref_img is not None else Image.open(os.path.join(OUT, file))
        u = reference_tensor(img, size, pad, norm)
        save_gz(os.path.join(OUT, f"{name}.u8.gz"), u.tobytes())
        cases.append({"name": name, "file": file, "size": size, "pad": pad, "tensor": f"{name}.u8.gz", "note": note})

    Image.fromarray(pattern(50, 80, 1)).save(os.path.join(OUT, "rgb_50x80.png"))
    add("rgb_50x80_336", "rgb_50x80.png", 336, note="portrait, upscaled 4.2x to the released 336")
    Image.fromarray(pattern(97, 31, 2)).save(os.path.join(OUT, "rgb_97x31.png"))
    add("rgb_97x31_64", "rgb_97x31.png", 64, note="landscape, odd sizes, odd padding split")
    add("rgb_97x31_nopad_32", "rgb_97x31.png", 32, pad=False, note="no padding: shortest edge 32 then centre crop")
    Image.fromarray(pattern(45, 45, 3)[..., 0]).save(os.path.join(OUT, "gray_45x45.png"))
    add("gray_45x45_32", "gray_45x45.png", 32, note="mode L, square, downscaled")
    Image.fromarray(pattern(64, 40, 4, channels=4), "RGBA").save(os.path.join(OUT, "rgba_64x40.png"))
    add("rgba_64x40_40", "rgba_64x40.png", 40, note="alpha dropped as PIL convert('RGB') does")
    Image.fromarray(pattern(700, 300, 5, noise=0)).save(os.path.join(OUT, "rgb_700x300.png"), optimize=True)
    add("rgb_700x300_336", "rgb_700x300.png", 336, note="downscaled 2.08x to 336")
    Image.fromarray(pattern(120, 90, 6)).save(os.path.join(OUT, "photo_120x90.jpg"), quality=90)
    add("jpeg_120x90_64", "photo_120x90.jpg", 64, note="JPEG: decoders may differ by an LSB")

    # 16-bit grayscale with the documented rule round(v / 257)
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:60, 0:40]
    g16 = np.clip(x * 1500 + y * 300 + rng.integers(0, 2000, size=(60, 40)), 0, 65535).astype(np.uint16)
    Image.fromarray(g16).save(os.path.join(OUT, "gray16_40x60.png"))
    assert Image.open(os.path.join(OUT, "gray16_40x60.png")).mode == "I;16"
    Image.fromarray(g16).save(os.path.join(OUT, "gray16_40x60.tif"))  # the same samples in a 16-bit TIFF
    g8 = np.floor(g16.astype(np.float64) / 257 + 0.5).astype(np.uint8)
    add("gray16_40x60_48", "gray16_40x60.png", 48, ref_img=Image.fromarray(g8),
        note="16-bit: round(v/257) then the reference pipeline (PIL itself would clip at 255)")

    # the same pixels in other containers: lossless, so they must decode to the PNG's pixels
    base = Image.open(os.path.join(OUT, "rgb_97x31.png"))
    base.save(os.path.join(OUT, "rgb_97x31.tif"))
    base.save(os.path.join(OUT, "rgb_97x31.webp"), lossless=True)
    return cases


def file_meta(ts):
    m = FileMetaDataset()
    m.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # secondary capture
    m.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[ts, "healthgpt"])
    m.TransferSyntaxUID = ts
    return m


def dicom(name, rows, cols, arr, ts=ExplicitVRLittleEndian, **attrs):
    ds = Dataset()
    ds.file_meta = file_meta(ts)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, cols
    for k, v in attrs.items():
        setattr(ds, k, v)
    if arr is not None:
        ds.PixelData = arr if isinstance(arr, bytes) else arr.tobytes()
    ds.save_as(os.path.join(OUT, name), enforce_file_format=True, little_endian=True,
               implicit_vr=(ts == ImplicitVRLittleEndian))
    return pydicom.dcmread(os.path.join(OUT, name))


def to8(y, y_min, y_max):
    return np.floor((y - y_min) / (y_max - y_min) * 255 + 0.5).astype(np.uint8)


def window8(x, c, w):
    # PS3.3 C.11.2.1.2.1 (LINEAR) onto 0..255
    c, w = c - 0.5, w - 1
    y = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
    return np.floor(y * 255 + 0.5).astype(np.uint8)


def dicom_cases():
    cases = []
    rng = np.random.default_rng(11)
    mono = dict(SamplesPerPixel=1, PixelRepresentation=0)

    # MONOCHROME2, 12 bits stored in 16, window from the file; the high nibble carries junk that
    # must be masked off
    v = rng.integers(0, 4096, size=(10, 12)).astype(np.uint16)
    ds = dicom("mono2_u12.dcm", 10, 12, v | 0xA000, PhotometricInterpretation="MONOCHROME2", BitsAllocated=16,
               BitsStored=12, HighBit=11, WindowCenter=2000, WindowWidth=1500, **mono)
    x = ds.pixel_array.astype(np.float64)
    assert np.array_equal(x, v)
    exp = window8(x, 2000, 1500)
    pyd = apply_windowing(x.copy(), ds)
    assert np.array_equal(exp, to8(pyd, 0, 4095)), "window formula disagrees with pydicom"
    cases.append({"file": "mono2_u12.dcm", "width": 12, "height": 10, "gray": exp.ravel().tolist(),
                  "note": "MONOCHROME2, 12 of 16 bits, junk high bits masked, file window 2000/1500"})
    exp2 = window8(x, 1000, 400)
    ds.WindowCenter, ds.WindowWidth = 1000, 400
    assert np.array_equal(exp2, to8(apply_windowing(x.copy(), ds), 0, 4095))
    cases.append({"file": "mono2_u12.dcm", "width": 12, "height": 10, "window": {"center": 1000, "width": 400},
                  "gray": exp2.ravel().tolist(), "note": "the caller's window wins over the file's"})

    # MONOCHROME1, 8-bit, no window: min..max of the frame, inverted; implicit VR little endian
    v = rng.integers(30, 200, size=(9, 7)).astype(np.uint8)
    ds = dicom("mono1_u8.dcm", 9, 7, v, ts=ImplicitVRLittleEndian, PhotometricInterpretation="MONOCHROME1",
               BitsAllocated=8, BitsStored=8, HighBit=7, **mono)
    x = ds.pixel_array.astype(np.float64)
    exp = 255 - to8(x, x.min(), x.max())
    cases.append({"file": "mono1_u8.dcm", "width": 7, "height": 9, "gray": exp.ravel().tolist(),
                  "note": "MONOCHROME1 inverted, implicit VR, no window: min..max"})

    # CT-like: signed 16-bit, slope 2, intercept -1024, two windows (the first is used)
    v = rng.integers(-1500, 2500, size=(8, 11)).astype(np.int16)
    ds = dicom("ct_s16.dcm", 8, 11, v, PhotometricInterpretation="MONOCHROME2", BitsAllocated=16,
               BitsStored=16, HighBit=15, SamplesPerPixel=1, PixelRepresentation=1,
               RescaleSlope=2, RescaleIntercept=-1024, RescaleType="HU",
               WindowCenter=[40, 400], WindowWidth=[400, 2000])
    x = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    assert np.array_equal(x, v.astype(np.float64) * 2 - 1024)
    exp = window8(x, 40, 400)
    pyd = apply_windowing(x.copy(), ds, index=0)
    assert np.array_equal(exp, to8(pyd, -32768 * 2 - 1024, 32767 * 2 - 1024))
    cases.append({"file": "ct_s16.dcm", "width": 11, "height": 8, "gray": exp.ravel().tolist(),
                  "note": "signed 16-bit, slope 2, intercept -1024, first of two windows (40/400)"})

    # RGB, planar configuration 1 (all R, then all G, then all B)
    rgb = rng.integers(0, 256, size=(6, 5, 3)).astype(np.uint8)
    planar = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    ds = dicom("rgb_planar.dcm", 6, 5, planar, PhotometricInterpretation="RGB", SamplesPerPixel=3,
               PlanarConfiguration=1, BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0)
    assert np.array_equal(ds.pixel_array, rgb)
    cases.append({"file": "rgb_planar.dcm", "width": 5, "height": 6, "rgb": rgb.ravel().tolist(),
                  "note": "RGB, planar configuration 1"})

    # YBR_FULL (full-range YCbCr), interleaved: pydicom's conversion to RGB is the expectation
    ybr = rng.integers(0, 256, size=(6, 5, 3)).astype(np.uint8)
    ds = dicom("ybr_full.dcm", 6, 5, ybr, PhotometricInterpretation="YBR_FULL", SamplesPerPixel=3,
               PlanarConfiguration=0, BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0)
    rgb = convert_color_space(ybr.copy(), "YBR_FULL", "RGB")
    assert not np.array_equal(rgb, ybr) and np.array_equal(ds.pixel_array, rgb)  # pydicom converts on read too
    cases.append({"file": "ybr_full.dcm", "width": 5, "height": 6, "rgb": rgb.ravel().tolist(), "tolerance": 1,
                  "note": "YBR_FULL to RGB as pydicom (its float32 matmul may round a .5 the other way)"})

    # three frames: frame 0 by default, any other on request
    frames = rng.integers(0, 256, size=(3, 4, 4)).astype(np.uint8)
    ds = dicom("multiframe.dcm", 4, 4, frames, PhotometricInterpretation="MONOCHROME2", BitsAllocated=8,
               BitsStored=8, HighBit=7, NumberOfFrames=3, WindowCenter=128, WindowWidth=256, **mono)
    assert np.array_equal(ds.pixel_array, frames)
    for f in (0, 2):
        exp = window8(frames[f].astype(np.float64), 128, 256)
        cases.append({"file": "multiframe.dcm", "width": 4, "height": 4, "frame": f, "gray": exp.ravel().tolist(),
                      "note": f"frame {f} of 3"})

    # bad files
    dicom("no_pixels.dcm", 4, 4, None, PhotometricInterpretation="MONOCHROME2", BitsAllocated=8,
          BitsStored=8, HighBit=7, **mono)
    junk = bytes([0xFF, 0xD8, 0xFF, 0xD9])  # a JPEG stream's start and end markers, never decoded
    dicom("jpeg_baseline.dcm", 4, 4, encapsulate([junk]), ts=JPEGBaseline8Bit,
          PhotometricInterpretation="MONOCHROME2", BitsAllocated=8, BitsStored=8, HighBit=7, **mono)
    return cases


def decoder_output_case():
    # idx2img's custom_to_pil on a float32 decoder output, values beyond [-1, 1] included
    rng = np.random.default_rng(13)
    x = rng.normal(0, 0.7, size=(3, 64, 64)).astype(np.float32)
    save_gz(os.path.join(OUT, "decoder_out.f32.gz"), x.tobytes())
    y = np.clip(x, -1.0, 1.0)
    y = (y + np.float32(1.0)) / np.float32(2.0)
    y = (np.float32(255) * y.transpose(1, 2, 0)).astype(np.uint8)
    save_gz(os.path.join(OUT, "decoder_out.rgb.gz"), y.tobytes())
    return {"input": "decoder_out.f32.gz", "rgb": "decoder_out.rgb.gz", "width": 64, "height": 64}


def vqgan_input_case():
    # taming idx2img.img2idx's preprocess: TF.resize of a PIL image (PIL's resize, LANCZOS) to
    # size x size, ToTensor (float32 / 255), then 2x - 1; 48 stands in for 256
    img = Image.open(os.path.join(OUT, "rgb_97x31.png")).convert("RGB").resize((48, 48), Image.LANCZOS)
    x = np.asarray(img).astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    x = np.float32(2) * x - np.float32(1)
    save_gz(os.path.join(OUT, "vqgan_97x31_48.f32.gz"), x.astype("<f4").tobytes())
    return {"file": "rgb_97x31.png", "size": 48, "tensor": "vqgan_97x31_48.f32.gz"}


def main():
    os.makedirs(OUT, exist_ok=True)
    norm = norm_table()
    with open(os.path.join(OUT, "norm.f32"), "wb") as f:
        f.write(norm.astype("<f4").tobytes())
    out = {
        "background": list(BACKGROUND),
        "images": image_cases(norm),
        "dicom": dicom_cases(),
        "decoder": decoder_output_case(),
        "vqgan_input": vqgan_input_case(),
    }
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
