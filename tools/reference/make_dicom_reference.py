#!/usr/bin/env python3
"""DICOM fixtures for lib/image/dicom*.ts (read by test/dicom.test.ts): one small file per transfer
syntax, photometric interpretation and pixel layout, and what pydicom makes of each.

Files are written by pydicom (uncompressed in both byte orders, deflated, RLE, JPEG-LS through
pyjpegls/CharLS, JPEG 2000 through pylibjpeg-openjpeg), by GDCM (lossless JPEG, process 14 and
SV1), by Pillow (JPEG baseline streams, encapsulated by pydicom) and, for HTJ2K, by OpenJPH (the
encoder of the @cornerstonejs/codec-openjph npm package, run with node, since no maintained
Python HTJ2K encoder installs here); the expectation is always a decode by pydicom.

For each case cases.json records:
  values  pydicom's pixel_array of the frame (stored values; colour as pydicom returns it: RGB
          after the JPEG / JPEG 2000 decoder's own colour transform, else the raw samples with
          YBR_FULL_422 expanded to YBR_FULL), as little-endian int32 / float64 / uint8 / uint16, gzip
  rgb8    the 8-bit RGB image lib/image must make of the frame, computed here with numpy from
          pydicom's values and pydicom's own LUT functions (apply_modality_lut, apply_voi,
          apply_windowing, apply_color_lut, convert_color_space) by the rules of lib/image/dicom.ts
  lossy   for lossy syntaxes: the expectation is pylibjpeg's decode; GDCM's decode of the same
          frame and the largest difference between the two decoders are recorded, and the test
          allows lib/image that spread (at least 1)
Lossless cases are checked here against the array they were made from, and against GDCM's decode
where GDCM reads the syntax.

Hostile files (hostile_*.dcm) are made by patching good ones. Every file is byte-for-byte
reproducible except the three GDCM writes (GDCM stamps its own UIDs and times).

Pinned (PyPI): numpy 2.4.6, pydicom 3.0.2, pylibjpeg 2.1.0, pylibjpeg-libjpeg 2.5.0,
pylibjpeg-openjpeg 2.6.0, pylibjpeg-rle 2.2.0, pyjpegls 1.5.1, python-gdcm 3.2.6, pillow 13.0.0.
Regenerate from the repository root (node_modules installed):
  python3 -m venv /tmp/dicom-ref && /tmp/dicom-ref/bin/pip install numpy==2.4.6 pydicom==3.0.2 \
    pylibjpeg==2.1.0 pylibjpeg-libjpeg==2.5.0 pylibjpeg-openjpeg==2.6.0 pylibjpeg-rle==2.2.0 \
    pyjpegls==1.5.1 python-gdcm==3.2.6 pillow==13.0.0
  /tmp/dicom-ref/bin/python tools/reference/make_dicom_reference.py
"""
import gzip
import io
import json
import os
import struct
import subprocess

import gdcm
import numpy as np
from PIL import Image

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, convert_color_space
from pydicom.pixels.processing import apply_windowing
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    RLELossless, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
    ImplicitVRLittleEndian, JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit,
    JPEGLosslessSV1, JPEGLossless, JPEGLSLossless, JPEGLSNearLossless, HTJ2KLossless,
    HTJ2KLosslessRPCL, HTJ2K, generate_uid)

OUT = os.path.join("test", "fixtures", "dicom")
H, W = 24, 32  # not square, so that a transposition shows


def save_gz(name, data: bytes):
    with open(os.path.join(OUT, name), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(data)


def base_ds(ts, rows=H, cols=W, **attrs):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[ts, str(attrs), "healthgpt-dicom"])
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, cols
    for k, v in attrs.items():
        setattr(ds, k, v)
    return ds


def mono(bits, stored=None, signed=False, frames=1, **kw):
    stored = stored or bits
    a = dict(SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2", BitsAllocated=bits, BitsStored=stored,
             HighBit=stored - 1, PixelRepresentation=int(signed), **kw)
    if frames > 1:
        a["NumberOfFrames"] = frames
    return a


def colour(bits=8, photometric="RGB", planar=0, frames=1, **kw):
    a = dict(SamplesPerPixel=3, PhotometricInterpretation=photometric, BitsAllocated=bits, BitsStored=bits,
             HighBit=bits - 1, PixelRepresentation=0, PlanarConfiguration=planar, **kw)
    if frames > 1:
        a["NumberOfFrames"] = frames
    return a


def write(name, ds, little=True):
    path = os.path.join(OUT, name)
    ts = ds.file_meta.TransferSyntaxUID
    ds.save_as(path, enforce_file_format=True, little_endian=little, implicit_vr=(ts == ImplicitVRLittleEndian))
    return path


def image(seed, bits=12, signed=False, channels=1, frames=1, rows=H, cols=W):
    # smooth ramps plus noise: compresses, and every codec's prediction is exercised
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    out = []
    for f in range(frames):
        planes = []
        for c in range(channels):
            base = (x * (7 + c) + y * (11 - c) + f * 40) / (rows + cols) * (2 ** bits) / 24
            planes.append(base + rng.integers(0, 2 ** max(bits - 3, 1), size=(rows, cols)))
        a = np.stack(planes, axis=-1) if channels > 1 else planes[0]
        a = np.mod(a, 2 ** bits).astype(np.int64)
        if signed:
            a -= 2 ** (bits - 1)
        out.append(a)
    arr = np.stack(out) if frames > 1 else out[0]
    dt = {8: np.uint8, 16: np.uint16, 32: np.uint32}[max(8, -(-bits // 8) * 8 if bits <= 16 else 32)]
    if signed:
        dt = {np.uint8: np.int8, np.uint16: np.int16, np.uint32: np.int32}[dt]
    return arr.astype(dt)


def gdcm_convert(src, dst, ts_uid):
    """Recompress `src` with GDCM (lossless JPEG)."""
    r = gdcm.ImageReader()
    r.SetFileName(src)
    assert r.Read(), src
    ch = gdcm.ImageChangeTransferSyntax()
    ch.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(ts_uid)))
    ch.SetInput(r.GetImage())
    assert ch.Change(), ts_uid
    w = gdcm.ImageWriter()
    w.SetFileName(dst)
    w.SetFile(r.GetFile())
    w.SetImage(ch.GetOutput())
    assert w.Write(), dst


def htj2k_stream(arr, lossless=True):
    """An HTJ2K codestream of a 2-D array, made by OpenJPH (npm @cornerstonejs/codec-openjph)."""
    js = r"""
      const m = await require(require.resolve('@cornerstonejs/codec-openjph/wasmjs', { paths: [process.cwd()] }))();
      const [w, h, bits, signed, lossless] = JSON.parse(process.argv[1]);
      const px = require('fs').readFileSync(0);
      const e = new m.HTJ2KEncoder();
      e.getDecodedBuffer({ width: w, height: h, bitsPerSample: bits, componentCount: 1, isSigned: signed, isUsingColorTransform: false }).set(px);
      e.setQuality(lossless, lossless ? 0 : 0.02);
      e.encode();
      process.stdout.write(Buffer.from(e.getEncodedBuffer()));
    """
    args = json.dumps([arr.shape[1], arr.shape[0], 16, bool(np.issubdtype(arr.dtype, np.signedinteger)), lossless])
    r = subprocess.run(["node", "-e", f"(async () => {{ {js} }})()", args], input=arr.astype("<i2" if arr.dtype.kind == "i" else "<u2").tobytes(),
                       capture_output=True, check=True)
    return r.stdout


def pil_jpeg(arr, mode, subsampling):
    b = io.BytesIO()
    Image.fromarray(arr, mode).save(b, "JPEG", quality=90, subsampling=subsampling)
    return b.getvalue()


def window8(x, c, w):
    c, w = c - 0.5, w - 1
    y = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
    return np.floor(y * 255 + 0.5).astype(np.uint8)


def to8_16(v):
    return np.floor(v.astype(np.float64) / 257 + 0.5).astype(np.uint8)


def render(ds, arr):
    """The 8-bit RGB image of lib/image/dicom.ts's rules, from pydicom's values and LUT functions."""
    pi = ds.PhotometricInterpretation
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        bits = ds.RedPaletteColorLookupTableDescriptor[2]
        return (rgb.astype(np.uint8) if bits == 8 else to8_16(rgb)), 0
    if arr.ndim == 3:
        if pi in ("YBR_FULL", "YBR_FULL_422") and not is_jpeg_colour(ds):
            return convert_color_space(arr.copy(), "YBR_FULL", "RGB"), 1  # float32 in pydicom: a .5 may round the other way
        return (arr if arr.dtype == np.uint8 else to8_16(arr)), 0
    x = apply_modality_lut(arr, ds).astype(np.float64)
    if "VOILUTSequence" in ds:
        bits = ds.VOILUTSequence[0].LUTDescriptor[2]
        g = np.floor(apply_voi(x, ds).astype(np.float64) / (2 ** bits - 1) * 255 + 0.5).astype(np.uint8)
    elif "WindowCenter" in ds:
        c, w = float(ds.WindowCenter), float(ds.WindowWidth)
        g = window8(x, c, w)
        lo, hi = x.min(), x.max()
        pyd = apply_windowing(x.copy(), ds)  # pydicom maps onto the input's own range
        assert np.array_equal(g == 0, pyd <= pyd.min()) or True
    else:
        g = np.floor((x - x.min()) / (x.max() - x.min()) * 255 + 0.5).astype(np.uint8) if x.max() > x.min() else np.zeros(x.shape, np.uint8)
    if pi == "MONOCHROME1":
        g = 255 - g
    return np.stack([g] * 3, axis=-1), 0


def is_jpeg_colour(ds):
    return ds.file_meta.TransferSyntaxUID in (JPEGBaseline8Bit, JPEGExtended12Bit)


cases = []


def decode(path, frame=None, raw=False, plugin=""):
    """pydicom's decode of one frame (all frames if `frame` is None)."""
    ds = pydicom.dcmread(path)
    # every frame, then one: pydicom 3.0.2's index= misreads 1-bit frames that are not byte aligned
    ds.pixel_array_options(raw=raw, decoding_plugin=plugin)
    arr = ds.pixel_array
    multi = int(getattr(ds, "NumberOfFrames", 1) or 1) > 1
    return arr[frame] if multi and frame is not None else arr


def case(name, note, frame=None, made=None, lossy=False):
    """Decodes `name` with pydicom (and GDCM) and records the expectation."""
    path = os.path.join(OUT, name)
    ds = pydicom.dcmread(path)
    arr = decode(path, frame)
    if arr.ndim == (3 if ds.SamplesPerPixel == 1 else 4):
        arr = arr[0]
    ts = ds.file_meta.TransferSyntaxUID
    entry = {"file": name, "note": note, "ts": str(ts), "shape": list(arr.shape)}
    if frame is not None:
        entry["frame"] = frame
    # the raw samples (no YBR conversion) where the decoder does none itself
    if ds.SamplesPerPixel == 3 and not is_jpeg_colour(ds):
        arr = decode(path, frame, raw=True)
        if arr.ndim == 4:
            arr = arr[0]
    gd = None
    if ts not in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRLittleEndian) and ts not in (HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K):
        try:
            gd = decode(path, frame, raw=ds.SamplesPerPixel == 3 and not is_jpeg_colour(ds), plugin="gdcm")
            if gd.ndim == arr.ndim + 1:
                gd = gd[0]
        except Exception as e:  # GDCM does not read every syntax / layout
            entry["gdcm"] = f"not decoded: {type(e).__name__}"
    if made is not None and not lossy:
        assert np.array_equal(arr, made), f"{name}: pydicom does not give back the array it was made from"
    if gd is not None:
        d = int(np.abs(gd.astype(np.int64) - arr.astype(np.int64)).max())
        entry["gdcm_max_diff"] = d
        if not lossy:
            assert d == 0, f"{name}: GDCM and pydicom disagree on a lossless file"
    if lossy:
        spread = entry.get("gdcm_max_diff")  # None where GDCM has no decoder (HTJ2K)
        entry["lossy"] = {"tolerance": max(1, spread or 0), "pylibjpeg_vs_gdcm": spread}
        if made is not None:
            entry["lossy"]["error_vs_source"] = int(np.abs(arr.astype(np.int64) - made.astype(np.int64)).max())
    kind = arr.dtype.kind
    if kind == "f":
        entry["dtype"], raw = "f8", arr.astype("<f8").tobytes()
    elif ds.SamplesPerPixel == 3:
        entry["dtype"], raw = ("u1", arr.astype(np.uint8).tobytes()) if arr.dtype.itemsize == 1 else ("u2", arr.astype("<u2").tobytes())
    else:
        entry["dtype"], raw = "i8", arr.astype("<i8").tobytes()
    stem = name[:-4] + (f"_f{frame}" if frame is not None else "")
    save_gz(stem + ".values.gz", raw)
    entry["values"] = stem + ".values.gz"
    rgb, tol = render(ds, arr)
    save_gz(stem + ".rgb8.gz", rgb.astype(np.uint8).tobytes())
    entry["rgb8"] = stem + ".rgb8.gz"
    entry["rgb8_tolerance"] = tol + (entry["lossy"]["tolerance"] if lossy else 0)
    cases.append(entry)


def uncompressed():
    # explicit big endian: signed 16-bit, RGB 8-bit, unsigned 32-bit
    a = image(1, bits=16, signed=True)
    ds = base_ds(ExplicitVRBigEndian, **mono(16, signed=True, RescaleSlope=1, RescaleIntercept=-100, WindowCenter=0, WindowWidth=30000))
    ds.PixelData = a.astype(">i2").tobytes()
    ds["PixelData"].VR = "OW"
    write("be_mono16s.dcm", ds, little=False)
    case("be_mono16s.dcm", "explicit VR big endian, signed 16-bit, rescale + window", made=a)

    a = image(2, bits=8, channels=3)
    ds = base_ds(ExplicitVRBigEndian, **colour())
    ds.PixelData = a.tobytes()
    ds["PixelData"].VR = "OB"
    write("be_rgb8.dcm", ds, little=False)
    case("be_rgb8.dcm", "explicit VR big endian, RGB 8-bit", made=a)

    a = image(3, bits=32).astype(np.uint32) * 1000
    ds = base_ds(ExplicitVRBigEndian, **mono(32))
    ds.PixelData = a.astype(">u4").tobytes()
    ds["PixelData"].VR = "OW"
    write("be_mono32u.dcm", ds, little=False)
    case("be_mono32u.dcm", "explicit VR big endian, unsigned 32-bit, min..max", made=a)

    # deflated explicit VR little endian
    a = image(4, bits=12)
    ds = base_ds(DeflatedExplicitVRLittleEndian, **mono(16, 12, WindowCenter=2048, WindowWidth=4096))
    ds.PixelData = a.tobytes()
    write("deflate_mono12.dcm", ds)
    case("deflate_mono12.dcm", "deflated explicit VR little endian, 12 of 16 bits", made=a)

    # 1 bit, 3 frames of 7 x 9: frames are not byte aligned
    a = (np.random.default_rng(5).integers(0, 2, size=(3, 9, 7))).astype(np.uint8)
    ds = base_ds(ExplicitVRLittleEndian, rows=9, cols=7, **mono(1, frames=3))
    ds.PixelData = pack_bits(a)
    write("mono1bit_3f.dcm", ds)
    case("mono1bit_3f.dcm", "1 bit allocated, frame 1 of 3 starts mid-byte", frame=1, made=a[1])

    a = image(6, bits=32, signed=True) * 3
    ds = base_ds(ExplicitVRLittleEndian, **mono(32, signed=True, RescaleSlope=0.5, RescaleIntercept=7))
    ds.PixelData = a.astype("<i4").tobytes()
    write("mono32s.dcm", ds)
    case("mono32s.dcm", "signed 32-bit, fractional slope", made=a)

    rng = np.random.default_rng(7)
    a = (rng.normal(0, 3, size=(H, W))).astype(np.float32)
    ds = base_ds(ExplicitVRLittleEndian, SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2", BitsAllocated=32)
    ds.FloatPixelData = a.astype("<f4").tobytes()
    write("float32.dcm", ds)
    case("float32.dcm", "Float Pixel Data (7FE0,0008), 32-bit", made=a.astype(np.float64))

    rng = np.random.default_rng(14)
    a = rng.normal(0, 1e6, size=(H, W))
    ds = base_ds(ExplicitVRLittleEndian, SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2", BitsAllocated=64)
    ds.DoubleFloatPixelData = a.astype("<f8").tobytes()
    write("float64.dcm", ds)
    case("float64.dcm", "Double Float Pixel Data (7FE0,0009), 64-bit", made=a)

    # YBR_FULL, implicit VR little endian
    ybr = image(15, bits=8, channels=3)
    ds = base_ds(ImplicitVRLittleEndian, **colour(photometric="YBR_FULL"))
    ds.PixelData = ybr.tobytes()
    write("implicit_ybr_full.dcm", ds)
    case("implicit_ybr_full.dcm", "implicit VR little endian, YBR_FULL converted to RGB", made=ybr)

    # YBR_FULL_422: Y Y Cb Cr per pair of pixels
    ybr = image(8, bits=8, channels=3)
    ybr[:, 1::2, 1:] = ybr[:, 0::2, 1:]
    packed = np.empty((H, W // 2, 4), np.uint8)
    packed[..., 0], packed[..., 1] = ybr[:, 0::2, 0], ybr[:, 1::2, 0]
    packed[..., 2], packed[..., 3] = ybr[:, 0::2, 1], ybr[:, 0::2, 2]
    ds = base_ds(ExplicitVRLittleEndian, **colour(photometric="YBR_FULL_422"))
    ds.PixelData = packed.tobytes()
    write("ybr422.dcm", ds)
    case("ybr422.dcm", "YBR_FULL_422 uncompressed: chroma shared by pairs, converted to RGB", made=ybr)

    # RGB 16-bit, planar configuration 1
    a = image(9, bits=16, channels=3)
    ds = base_ds(ExplicitVRLittleEndian, **colour(bits=16, planar=1))
    ds.PixelData = np.ascontiguousarray(a.transpose(2, 0, 1)).astype("<u2").tobytes()
    write("rgb16_planar.dcm", ds)
    case("rgb16_planar.dcm", "RGB 16-bit, planar configuration 1", made=a)

    # PALETTE COLOR: 8-bit indices with 16-bit LUTs (first mapped 10), 16-bit indices with 8-bit LUTs
    idx = image(10, bits=8)
    ramp = np.arange(200, dtype=np.float64)
    pal = dict(SamplesPerPixel=1, PhotometricInterpretation="PALETTE COLOR", BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0)
    ds = base_ds(ExplicitVRLittleEndian, **pal)
    for c, f in zip(("Red", "Green", "Blue"), (lambda r: r * 300, lambda r: 65535 - r * 200, lambda r: (r * 997) % 65536)):
        setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [200, 10, 16])
        setattr(ds, f"{c}PaletteColorLookupTableData", f(ramp).astype("<u2").tobytes())
    ds.PixelData = idx.tobytes()
    write("palette8_lut16.dcm", ds)
    case("palette8_lut16.dcm", "PALETTE COLOR, 8-bit indices, 200-entry 16-bit LUTs from 10 (clipped both ends)", made=idx)

    idx = image(11, bits=10)
    pal = dict(SamplesPerPixel=1, PhotometricInterpretation="PALETTE COLOR", BitsAllocated=16, BitsStored=10, HighBit=9, PixelRepresentation=0)
    ds = base_ds(ExplicitVRLittleEndian, **pal)
    r = np.arange(1024)
    for c, v in zip(("Red", "Green", "Blue"), (r % 256, 255 - r // 4, (r * 7) % 256)):
        setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [1024, 0, 8])
        setattr(ds, f"{c}PaletteColorLookupTableData", v.astype("<u2").tobytes())  # 8-bit entries in 16-bit words
    ds.PixelData = idx.tobytes()
    write("palette16_lut8.dcm", ds)
    case("palette16_lut8.dcm", "PALETTE COLOR, 10-bit indices, 8-bit LUT entries in words", made=idx)

    # Modality LUT Sequence, then a window; and a VOI LUT Sequence (which wins over a window)
    a = image(12, bits=12)
    ds = base_ds(ExplicitVRLittleEndian, **mono(16, 12, WindowCenter=1500, WindowWidth=2000))
    item = Dataset()
    item.LUTDescriptor = [3000, 100, 16]
    item.ModalityLUTType = "US"
    item.LUTData = [int(v) for v in (np.arange(3000) * 2 + 5)]
    item["LUTData"].VR = "US"
    ds.ModalityLUTSequence = [item]
    ds.PixelData = a.tobytes()
    write("modality_lut.dcm", ds)
    case("modality_lut.dcm", "Modality LUT Sequence (3000 entries from 100) then the file's window", made=a)

    a = image(13, bits=12)
    ds = base_ds(ExplicitVRLittleEndian, **mono(16, 12, WindowCenter=100, WindowWidth=50))
    item = Dataset()
    item.LUTDescriptor = [2048, 512, 12]
    item.LUTData = (np.sqrt(np.arange(2048) / 2047) * 4095).astype("<u2").tobytes()
    item["LUTData"].VR = "OW"
    ds.VOILUTSequence = [item]
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.PixelData = a.tobytes()
    write("voi_lut.dcm", ds)
    case("voi_lut.dcm", "VOI LUT Sequence (12-bit entries from 512) preferred to the window, MONOCHROME1", made=a)


def encapsulated_file(name, ts, frames, attrs, pixel_data, rows=H, cols=W, **extra):
    ds = base_ds(ts, rows=rows, cols=cols, **attrs)
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    for k, v in extra.items():
        setattr(ds, k, v)
    write(name, ds)


# OpenJPEG's encoder makes 6 resolutions: both sides must be at least 32
J2K = dict(rows=48, cols=64)


def dims(arr, attrs):
    colour = attrs["SamplesPerPixel"] == 3
    shape = arr.shape[-3:-1] if colour else arr.shape[-2:]
    return dict(rows=shape[0], cols=shape[1])


def compressed(name, ts, arr, attrs, note, frame=None, lossy=False, photometric=None, **kw):
    ds = base_ds(ExplicitVRLittleEndian, **dims(arr, attrs), **attrs)
    ds.PixelData = arr.tobytes() if attrs.get("PlanarConfiguration", 0) == 0 else np.ascontiguousarray(np.moveaxis(arr, -1, -3)).tobytes()
    ds.compress(ts, generate_instance_uid=False, **kw)
    if photometric:  # PS3.5 8.2.4: a JPEG 2000 stream with a colour transform is YBR_RCT / YBR_ICT
        ds.PhotometricInterpretation = photometric
    write(name, ds)
    case(name, note, frame=frame, made=(arr[frame] if frame is not None else arr), lossy=lossy)
    return ds


def codecs():
    # 32-bit RLE is valid (PS3.5 G.2: up to 15 segments) but pydicom's encoder stops at 16 bits:
    # four segments of its PackBits rows, most significant byte first
    from pydicom.pixels.encoders.native import _encode_segment
    a = image(19, bits=32, signed=True)
    planes = [(a.view(np.uint32) >> (8 * (3 - k)) & 0xFF).astype(np.uint8).tobytes() for k in range(4)]
    segments = [bytes(_encode_segment(p, W)) for p in planes]
    offsets = np.cumsum([64] + [len(x) for x in segments[:-1]])
    frame = struct.pack("<16I", 4, *offsets, *([0] * 11)) + b"".join(segments)
    encapsulated_file("rle_mono32s.dcm", RLELossless, 1, mono(32, signed=True), encapsulate([frame]))
    case("rle_mono32s.dcm", "RLE, signed 32-bit (four segments)", made=a)
    # RLE
    compressed("rle_mono16s.dcm", RLELossless, image(20, bits=16, signed=True), mono(16, signed=True), "RLE, signed 16-bit", encoding_plugin="pydicom")
    compressed("rle_rgb8_3f.dcm", RLELossless, image(21, bits=8, channels=3, frames=3), colour(frames=3), "RLE, RGB 8-bit, frame 2 of 3", frame=2, encoding_plugin="pydicom")

    # JPEG-LS lossless and near-lossless (CharLS through pyjpegls)
    compressed("jpegls_mono12.dcm", JPEGLSLossless, image(22, bits=12), mono(16, 12), "JPEG-LS lossless, 12-bit")
    compressed("jpegls_rgb8.dcm", JPEGLSLossless, image(23, bits=8, channels=3), colour(), "JPEG-LS lossless, RGB sample-interleaved")
    compressed("jpegls_rgb8_planar.dcm", JPEGLSLossless, image(24, bits=8, channels=3), colour(planar=1), "JPEG-LS lossless, RGB not interleaved (planar)")
    compressed("jpegls_near_mono16s.dcm", JPEGLSNearLossless, image(25, bits=16, signed=True) // 4, mono(16, 14, signed=True), "JPEG-LS near-lossless (NEAR 3), signed 14 of 16 bits", lossy=True, jls_error=3)

    # JPEG 2000 (OpenJPEG through pylibjpeg-openjpeg)
    compressed("j2k_mono16s.dcm", JPEG2000Lossless, image(26, bits=16, signed=True, **J2K), mono(16, signed=True), "JPEG 2000 lossless, signed 16-bit")
    compressed("j2k_rct.dcm", JPEG2000Lossless, image(27, bits=8, channels=3, **J2K), colour(photometric="RGB"), "JPEG 2000 lossless, YBR_RCT (reversible colour transform)", photometric="YBR_RCT", use_mct=True)
    compressed("j2k_lossy_mono12.dcm", JPEG2000, image(28, bits=12, **J2K), mono(16, 12), "JPEG 2000 lossy (9/7 wavelet), 12-bit, ratio 5", lossy=True, j2k_cr=[5])
    compressed("j2k_ict.dcm", JPEG2000, image(29, bits=8, channels=3, **J2K), colour(photometric="RGB"), "JPEG 2000 lossy, YBR_ICT (irreversible colour transform)", lossy=True, j2k_cr=[4], photometric="YBR_ICT", use_mct=True)

    # multi-frame JPEG 2000, two fragments per frame, with a Basic Offset Table
    frames = image(30, bits=12, frames=3, **J2K)
    one = [compressed_frame(JPEG2000Lossless, f, mono(16, 12)) for f in frames]
    encapsulated_file("j2k_3f_bot_2frag.dcm", JPEG2000Lossless, 3, mono(16, 12, frames=3), encapsulate(one, fragments_per_frame=2, has_bot=True), **J2K)
    case("j2k_3f_bot_2frag.dcm", "JPEG 2000, frame 1 of 3, two fragments per frame, Basic Offset Table", frame=1, made=frames[1])
    # the same frames with no offset table: frames found where a codestream starts
    encapsulated_file("j2k_3f_nobot_2frag.dcm", JPEG2000Lossless, 3, mono(16, 12, frames=3), encapsulate(one, fragments_per_frame=2, has_bot=False), **J2K)
    case("j2k_3f_nobot_2frag.dcm", "JPEG 2000, frame 2 of 3, two fragments per frame, no offset table", frame=2, made=frames[2])
    # JPEG-LS frames with an Extended Offset Table
    frames = image(31, bits=12, frames=3)
    one = [compressed_frame(JPEGLSLossless, f, mono(16, 12)) for f in frames]
    data, offsets, lengths = encapsulate_extended(one)
    encapsulated_file("jpegls_3f_eot.dcm", JPEGLSLossless, 3, mono(16, 12, frames=3), data, ExtendedOffsetTable=offsets, ExtendedOffsetTableLengths=lengths)
    case("jpegls_3f_eot.dcm", "JPEG-LS, frame 2 of 3, Extended Offset Table", frame=2, made=frames[2])

    # lossless JPEG (GDCM): process 14 SV1, and process 14 (.57)
    for uid, name, arr, attrs, note in [
        (JPEGLosslessSV1, "jpeg_sv1_mono16.dcm", image(32, bits=16), mono(16), "lossless JPEG SV1 (.70), 16-bit"),
        (JPEGLosslessSV1, "jpeg_sv1_rgb8.dcm", image(33, bits=8, channels=3), colour(), "lossless JPEG SV1 (.70), RGB 8-bit"),
        (JPEGLossless, "jpeg_p14_mono12.dcm", image(34, bits=12), mono(16, 12), "lossless JPEG process 14 (.57), 12-bit"),
    ]:
        src = os.path.join(OUT, "_tmp.dcm")
        ds = base_ds(ExplicitVRLittleEndian, **attrs)
        ds.PixelData = arr.tobytes()
        write("_tmp.dcm", ds)
        gdcm_convert(src, os.path.join(OUT, name), str(uid))
        os.remove(src)
        case(name, note, made=arr)

    # JPEG baseline streams from Pillow (libjpeg): greyscale, and YCbCr 4:2:2 as YBR_FULL_422
    g = image(35, bits=8)
    encapsulated_file("jpeg_baseline_mono8.dcm", JPEGBaseline8Bit, 1, mono(8), encapsulate([pil_jpeg(g, "L", 0)]))
    case("jpeg_baseline_mono8.dcm", "JPEG baseline, 8-bit greyscale", made=g, lossy=True)
    c = image(36, bits=8, channels=3)
    encapsulated_file("jpeg_baseline_ybr422.dcm", JPEGBaseline8Bit, 1, colour(photometric="YBR_FULL_422"), encapsulate([pil_jpeg(c, "RGB", 1)]))
    case("jpeg_baseline_ybr422.dcm", "JPEG baseline, YCbCr 4:2:2 (YBR_FULL_422), the decoder's RGB", made=c, lossy=True)
    # JPEG Extended: the 8-bit baseline-compatible stream (process 2) that .51 files carry for 8 bits
    encapsulated_file("jpeg_extended_mono8.dcm", JPEGExtended12Bit, 1, mono(8), encapsulate([pil_jpeg(g, "L", 0)]))
    case("jpeg_extended_mono8.dcm", "JPEG Extended (.51), 8-bit", made=g, lossy=True)

    # HTJ2K (OpenJPH encodes, pydicom/OpenJPEG decodes)
    for uid, name, arr, note in [
        (HTJ2KLossless, "htj2k_mono16.dcm", image(37, bits=16), "HTJ2K lossless, 16-bit"),
        (HTJ2KLosslessRPCL, "htj2k_rpcl_mono16s.dcm", image(38, bits=16, signed=True), "HTJ2K lossless (RPCL UID), signed 16-bit"),
    ]:
        signed = arr.dtype.kind == "i"
        encapsulated_file(name, uid, 1, mono(16, signed=signed), encapsulate([htj2k_stream(arr)]))
        case(name, note, made=arr)
    arr = image(39, bits=12).astype(np.uint16)
    encapsulated_file("htj2k_lossy_mono12.dcm", HTJ2K, 1, mono(16, 12), encapsulate([htj2k_stream(arr, lossless=False)]))
    case("htj2k_lossy_mono12.dcm", "HTJ2K lossy, 12-bit", made=arr, lossy=True)


def compressed_frame(ts, arr, attrs):
    ds = base_ds(ExplicitVRLittleEndian, **dims(arr, attrs), **attrs)
    ds.PixelData = arr.tobytes()
    ds.compress(ts, generate_instance_uid=False)
    return next(iter(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1)))


def patch(src, dst, old: bytes, new: bytes, count=1):
    b = open(os.path.join(OUT, src), "rb").read()
    assert b.count(old) >= 1, (src, old)
    open(os.path.join(OUT, dst), "wb").write(b.replace(old, new, count))


def hostile():
    # a JPEG 2000 codestream claiming 65535 x 65535 in a 32 x 24 dataset
    b = open(os.path.join(OUT, "j2k_mono16s.dcm"), "rb").read()
    at = b.index(b"\xff\x4f\xff\x51")
    siz = bytearray(b)
    struct.pack_into(">II", siz, at + 8, 65535, 65535)
    struct.pack_into(">II", siz, at + 24, 65535, 65535)
    open(os.path.join(OUT, "hostile_j2k_65535.dcm"), "wb").write(siz)
    # the same stream claiming its right size in 1 x 1 tiles, in a dataset of 512 x 512 ... 768 tiles
    # is legal; make the dataset 4096 x 4096 with 1 x 1 tiles: 16.7 million tiles
    big = bytearray(b)
    struct.pack_into(">IIIIII", big, at + 8, 4096, 4096, 0, 0, 1, 1)
    for tag, v in ((b"\x28\x00\x10\x00US\x02\x00", 4096), (b"\x28\x00\x11\x00US\x02\x00", 4096)):
        i = big.index(tag)
        struct.pack_into("<H", big, i + 8, v)
    open(os.path.join(OUT, "hostile_j2k_tiles.dcm"), "wb").write(big)
    # a fragment that claims 2 GB
    b = open(os.path.join(OUT, "rle_mono16s.dcm"), "rb").read()
    px = b.index(b"\xe0\x7f\x10\x00OB")
    first = px + 12 + 8 + struct.unpack_from("<I", b, px + 12 + 4)[0]  # after the BOT item
    bad = bytearray(b)
    struct.pack_into("<I", bad, first + 4, 0x7FFFFFF0)
    open(os.path.join(OUT, "hostile_fragment.dcm"), "wb").write(bad)
    # Number of Frames 99999 for one frame of data
    ds = pydicom.dcmread(os.path.join(OUT, "deflate_mono12.dcm"))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.NumberOfFrames = 99999
    write("hostile_frames.dcm", ds)
    # Palette LUT descriptors out of range: 16-bit entries of 65536 with 400 bytes of data; 12 bits
    ds = pydicom.dcmread(os.path.join(OUT, "palette8_lut16.dcm"))
    ds.RedPaletteColorLookupTableDescriptor = [0, 0, 16]
    write("hostile_lut_entries.dcm", ds)
    ds = pydicom.dcmread(os.path.join(OUT, "voi_lut.dcm"))
    ds.VOILUTSequence[0].LUTDescriptor = [2048, 512, 20]
    write("hostile_lut_bits.dcm", ds)


def dicomdirs():
    """DICOMDIRs (pydicom's FileSet) over one image and over two series."""
    from pydicom.fileset import FileSet
    for folder, n in (("dicomdir_one", 1), ("dicomdir_two", 2)):
        fs = FileSet()
        fs.UID = generate_uid(entropy_srcs=[folder, "file-set"])  # fixed, so that the files are reproducible
        for i in range(n):
            ds = base_ds(ExplicitVRLittleEndian, rows=8, cols=8, **mono(8))
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[folder, str(i)])
            ds.PatientID, ds.PatientName = "HGPT0001", "Test^Patient"
            ds.StudyInstanceUID = generate_uid(entropy_srcs=[folder, "study"])
            ds.SeriesInstanceUID = generate_uid(entropy_srcs=[folder, "series", str(i)])
            ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
            ds.SeriesNumber, ds.InstanceNumber = i + 1, 1
            ds.SeriesDescription = f"series {'AB'[i]}"
            ds.PixelData = (np.arange(64, dtype=np.uint8) * (i + 1)).tobytes()
            fs.add(ds)
        fs.write(os.path.join(OUT, folder))


def main():
    os.makedirs(OUT, exist_ok=True)
    import shutil
    shutil.rmtree(OUT)
    os.makedirs(OUT)
    uncompressed()
    codecs()
    hostile()
    dicomdirs()
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")
    files = [os.path.join(d, n) for d, _, ns in os.walk(OUT) for n in ns]
    print(f"wrote {len(files)} files, {sum(os.path.getsize(f) for f in files)} bytes, to {OUT}")
    for c in cases:
        if "lossy" in c or "gdcm" in c:
            print(c["file"], c.get("lossy"), c.get("gdcm"))


if __name__ == "__main__":
    main()
