#!/usr/bin/env python3
"""Writes the data files of the bad-input corpus (files/), each broken in one way.

Standard library only; run from this folder (`python3 make_files.py`). The output is
committed; cases.toml says what each file is for.
"""
import gzip, io, json, os, shutil, struct, zipfile, zlib

os.chdir(os.path.dirname(os.path.abspath(__file__)))
shutil.rmtree("files", ignore_errors=True)


def put(name, data):
    os.makedirs(os.path.dirname("files/" + name) or "files", exist_ok=True)
    with open("files/" + name, "wb") as f:
        f.write(data)


def npy(descr, shape, data):
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + data


def npz(members, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, data)
    return buf.getvalue()


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


images = npy("|u1", "(10, 8, 8)", bytes(i % 256 for i in range(640)))
put("truncated.npy", npy("|u1", "(10, 8, 8)", bytes(100)))
put("huge-header.npy", npy("|u1", "(1000000000000, 28, 28)", bytes(100)))
put("not-numpy.npy", b"this is a text file, not an array\n")
put("labels-mismatch.npz", npz([("images.npy", images), ("labels.npy", npy("|u1", "(7,)", bytes(7)))]))
put("float-range.npz", npz([("images.npy", npy("<f4", "(2, 4, 4)", struct.pack("<32f", *([2.5] * 32))))]))
put("no-images.npz", npz([("weights.npy", npy("<f4", "(3,)", bytes(12)))]))
bomb = npy("|u1", "(1, 4, 4)", bytes(16)) + bytes(64 << 20)
put("bomb.npz", npz([("images.npy", bomb)], zipfile.ZIP_DEFLATED))
put("huge-member.npz", npz([("images.npy", npy("<f4", "(100000000, 28, 28)", bytes(64)))], zipfile.ZIP_DEFLATED))
put("bad-header.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
header = json.dumps({"images": {"dtype": "U8", "shape": [4, 4, 4], "data_offsets": [0, 64]}}).encode()
header += b" " * ((8 - len(header) % 8) % 8)
put("short.safetensors", struct.pack("<Q", len(header)) + header + bytes(10))
put("random.bin", bytes((i * 7919) % 251 for i in range(1000)))

# IDX folders: labels without images, and a folder where the images file should be.
put("idx-labels-only/t10k-images-idx3-ubyte", idx([3, 2, 3], range(18)))
put("idx-labels-only/t10k-labels-idx1-ubyte", idx([3], [0, 1, 2]))
put("idx-labels-only/train-labels-idx1-ubyte", idx([3], [0, 1, 2]))
put("idx-folder-in-place/train-images-idx3-ubyte/README", b"a folder, not an IDX file\n")
put("idx-folder-in-place/train-labels-idx1-ubyte", idx([3], [0, 1, 2]))
# A gzip bomb: 3 labels declared, 64 MiB of zeros after them (about 64 KiB compressed).
put("idx-gzip-bomb/train-images-idx3-ubyte.gz", gzip.compress(idx([3, 2, 3], range(18)), mtime=0))
put("idx-gzip-bomb/train-labels-idx1-ubyte.gz", gzip.compress(idx([3], [0, 1, 2]) + bytes(64 << 20), mtime=0))
put("idx-count-mismatch/train-images-idx3-ubyte", idx([3, 2, 3], range(18)))
put("idx-count-mismatch/train-labels-idx1-ubyte", idx([2], [0, 1]))


# An image folder with one file that is not an image.
def png(width, height):
    rows = b"".join(b"\x00" + bytes((x * 40 + y * 70) % 256 for x in range(width)) for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


put("images-corrupt/a.png", png(6, 6))
put("images-corrupt/b.png", b"not a png at all")
put("images-corrupt/c.png", png(6, 6))

# Ten 8x8 images, and a folder whose user manifest lists a checksum its file does not have.
put("images.npy", images)
put("manifest-mismatch/train-images-idx3-ubyte", idx([3, 2, 3], range(18)))
put("manifest-mismatch/train-labels-idx1-ubyte", idx([3], [0, 1, 2]))
put("manifest-mismatch/genae-dataset.toml", b"""name = "mine"
description = "three 2x3 images"
format = "idx"
image_shape = [1, 2, 3]

[train]
count = 3
images = { file = "train-images-idx3-ubyte", sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }
labels = { file = "train-labels-idx1-ubyte" }
""")
