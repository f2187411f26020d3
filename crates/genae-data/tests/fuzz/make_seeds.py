#!/usr/bin/env python3
"""Writes the seed files of the decoder fuzz test (tests/fuzz_decoders.rs) into seeds/.

Standard library only: each seed is a small valid file of one format, which the test mutates.
Run from this folder: `python3 make_seeds.py`. The output is committed; rerun only to change it.
"""
import gzip, io, json, os, struct, zipfile, zlib

os.chdir(os.path.dirname(os.path.abspath(__file__)))


def put(name, data):
    os.makedirs(os.path.dirname("seeds/" + name), exist_ok=True)
    with open("seeds/" + name, "wb") as f:
        f.write(data)


# IDX: 3 images of 2x3 and their labels, raw and gzipped.
def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


images = idx([3, 2, 3], range(18))
labels = idx([3], [1, 2, 3])
put("idx/images_raw", images)
put("idx/images_gz", gzip.compress(images, mtime=0))
put("idx/labels_raw", labels)
put("idx/labels_gz", gzip.compress(labels, mtime=0))

# CIFAR: one record of CIFAR-10 (label + 3072 bytes) and one of CIFAR-100 (coarse, fine + 3072).
put("cifar/cifar10_one", bytes([3]) + bytes(i % 256 for i in range(3072)))
put("cifar/cifar100_one", bytes([7, 42]) + bytes(i * 7 % 256 for i in range(3072)))


# SVHN: MAT v5 files with X (uint8 32x32x3xN, column-major) and y (double Nx1).
def element(dtype, data):
    if 0 < len(data) <= 4:
        return struct.pack("<I", (len(data) << 16) | dtype) + data + bytes(4 - len(data))
    pad = (8 - len(data) % 8) % 8
    return struct.pack("<II", dtype, len(data)) + data + bytes(pad)


def matrix(name, cls, dims, dtype, real):
    body = element(6, struct.pack("<II", cls, 0))  # miUINT32 array flags
    body += element(5, b"".join(struct.pack("<i", d) for d in dims))  # miINT32 dimensions
    body += element(1, name.encode())  # miINT8 name
    body += element(dtype, real)
    return struct.pack("<II", 14, len(body)) + body  # miMATRIX


def mat(n, compressed):
    header = b"MATLAB 5.0 MAT-file, genae fuzz seed".ljust(116) + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    x = matrix("X", 9, [32, 32, 3, n], 2, bytes(i % 251 for i in range(3072 * n)))  # mxUINT8, miUINT8
    y = matrix("y", 6, [n, 1], 9, b"".join(struct.pack("<d", v) for v in [10.0, 3.0][:n]))  # mxDOUBLE
    out = header
    for m in (x, y):
        if compressed:
            z = zlib.compress(m)
            out += struct.pack("<II", 15, len(z)) + z  # miCOMPRESSED
        else:
            out += m
    return out


put("svhn/two_compressed.mat", mat(2, True))
put("svhn/one_plain.mat", mat(1, False))


# NumPy: .npy format 1.0 and .npz archives (stored and deflated).
def npy(descr, shape, data):
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + data


u8 = npy("|u1", "(2, 4, 4)", bytes(range(32)))
f4 = npy("<f4", "(1, 2, 2, 3)", b"".join(struct.pack("<f", i / 12) for i in range(12)))
lab = npy("<i8", "(2,)", struct.pack("<qq", 1, 0))
put("npy/u8.npy", u8)
put("npy/f4_nhwc.npy", f4)
for name, method in [("stored.npz", zipfile.ZIP_STORED), ("compressed.npz", zipfile.ZIP_DEFLATED)]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for member, data in [("x_train.npy", u8), ("y_train.npy", lab), ("x_test.npy", u8), ("y_test.npy", lab)]:
            info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, data)
    put("npz/" + name, buf.getvalue())

# safetensors: an 8-byte header length, a JSON header, then the data.
data = bytes(range(32)) + struct.pack("<qq", 1, 0)
header = json.dumps({
    "images": {"dtype": "U8", "shape": [2, 4, 4], "data_offsets": [0, 32]},
    "labels": {"dtype": "I64", "shape": [2], "data_offsets": [32, 48]},
}, separators=(",", ":")).encode()
header += b" " * ((8 - len(header) % 8) % 8)
put("safetensors/images.safetensors", struct.pack("<Q", len(header)) + header + data)


# PNG: a 5x3 RGB and a 4x4 grey image.
def png(width, height, color_type, channels):
    rows = b"".join(b"\x00" + bytes((x * 40 + y * 70 + c * 20) % 256 for x in range(width) for c in range(channels)) for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


put("image/rgb.png", png(5, 3, 2, 3))
put("image/gray.png", png(4, 4, 0, 1))
