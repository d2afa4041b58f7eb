#!/usr/bin/env python3
# mkimage.py -- build OCI image layouts for the sandbox tests: a busybox image and hostile/bad variants.
#
# usage: mkimage.py KIND OUT [--probe PATH] [--tar]
# KIND: busybox (busybox-static + the test probe, 3 layers: tar, zstd, gzip with whiteouts),
#       multi (the same spread over 8 layers, for the unpack benchmark), busybox-gzip and
#       multi-gzip (no zstd: what umoci 0.4 reads), or a bad image:
#       bad-digest missing-blob other-platform dotdot abspath symlink-escape hardlink-escape
#       device bad-whiteout truncated-gzip many-entries nested10 bad-json
# Every blob is written under blobs/sha256/ with its real digest unless the kind corrupts it.
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

BUSYBOX = "/bin/busybox"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def tar_bytes(entries):
    """entries: list of dicts name,type(file|dir|sym|link|chr|fifo),data,target,mode,uid,gid."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.uid = e.get("uid", 0)
            ti.gid = e.get("gid", 0)
            ti.mtime = 1700000000
            kind = e.get("type", "file")
            data = None
            if kind == "file":
                data = e.get("data", b"")
                ti.size = len(data)
                ti.mode = e.get("mode", 0o644)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e.get("mode", 0o755)
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["target"]
                ti.mode = 0o777
            elif kind == "link":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["target"]
                ti.mode = e.get("mode", 0o644)
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = 1, 3
                ti.mode = 0o666
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


DIFF_IDS = {}


def compress(raw, how):
    z, mt = _compress(raw, how)
    DIFF_IDS[hashlib.sha256(z).hexdigest()] = "sha256:" + hashlib.sha256(raw).hexdigest()
    return z, mt


ONLY_GZIP = False


def _compress(raw, how):
    if ONLY_GZIP and how != "none":
        how = "gzip"
    if how == "gzip":
        return gzip.compress(raw, compresslevel=6, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        z = subprocess.run(["zstd", "-q", "-c", "-3"], input=raw, stdout=subprocess.PIPE, check=True).stdout
        return z, "application/vnd.oci.image.layer.v1.tar+zstd"
    return raw, "application/vnd.oci.image.layer.v1.tar"


class Layout:
    def __init__(self, out):
        self.out = out
        os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(out, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def blob(self, data, media_type, write=True, **extra):
        if isinstance(data, str):
            data = data.encode()
        h = hashlib.sha256(data).hexdigest()
        if write:
            with open(os.path.join(self.out, "blobs", "sha256", h), "wb") as f:
                f.write(data)
        d = {"mediaType": media_type, "digest": "sha256:" + h, "size": len(data)}
        d.update(extra)
        return d

    def manifest(self, layers, config=None, arch=ARCH):
        cfg = {"architecture": arch, "os": "linux",
               "config": config or {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                                    "Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers",
                          "diff_ids": [DIFF_IDS.get(l["digest"][7:], l["digest"]) for l in layers]}}
        cdesc = self.blob(json.dumps(cfg), "application/vnd.oci.image.config.v1+json")
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
             "config": cdesc, "layers": layers}
        return json.dumps(m)

    def index(self, manifests):
        with open(os.path.join(self.out, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}, f)


def busybox_entries():
    applets = subprocess.run([BUSYBOX, "--list"], stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    ents = [{"name": d, "type": "dir"} for d in ("bin/", "etc/", "usr/", "usr/bin/", "var/", "home/", "home/app/")]
    ents.append({"name": "bin/busybox", "data": bb, "mode": 0o755})
    for a in applets:
        if a != "busybox":
            ents.append({"name": "bin/" + a, "type": "sym", "target": "busybox"})
    ents.append({"name": "etc/passwd", "data": b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"})
    ents.append({"name": "etc/group", "data": b"root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"})
    ents.append({"name": "etc/motd", "data": b"removed by a whiteout\n"})
    ents.append({"name": "etc/secret", "data": b"root only\n", "mode": 0o600})
    ents.append({"name": "opq/", "type": "dir"})
    ents.append({"name": "opq/lower", "data": b"hidden by an opaque whiteout\n"})
    ents.append({"name": "home/app/owned", "data": b"app's file\n", "mode": 0o600, "uid": 1000, "gid": 1000})
    return ents


def busybox_layers(lay, probe, nlayers=3):
    layers = []
    base = busybox_entries()
    if nlayers > 3:
        # spread the applet links over several layers
        chunk = (len(base) + nlayers - 3) // (nlayers - 2)
        parts = [base[i:i + chunk] for i in range(0, len(base), chunk)]
    else:
        parts = [base]
    for i, p in enumerate(parts):
        data, mt = compress(tar_bytes(p), ["none", "gzip", "zstd"][i % 3])
        layers.append(lay.blob(data, mt))
    second = [{"name": "bin/", "type": "dir"}]
    if probe:
        with open(probe, "rb") as f:
            pb = f.read()
        second.append({"name": "bin/sbx-probe", "data": pb, "mode": 0o755})
        second.append({"name": "bin/suid-probe", "data": pb, "mode": 0o4755, "uid": 0, "gid": 0})
    second.append({"name": "bin/hardlinked-busybox", "type": "link", "target": "bin/busybox"})
    data, mt = compress(tar_bytes(second), "zstd")
    layers.append(lay.blob(data, mt))
    third = [{"name": "etc/.wh.motd", "data": b""},
             {"name": "opq/", "type": "dir"},
             {"name": "opq/.wh..wh..opq", "data": b""},
             {"name": "opq/upper", "data": b"from the top layer\n"},
             {"name": "etc/hostname", "data": b"image\n"}]
    data, mt = compress(tar_bytes(third), "gzip")
    layers.append(lay.blob(data, mt))
    return layers


def simple(lay, entries, how="none"):
    data, mt = compress(tar_bytes(entries), how)
    return [lay.blob(data, mt)]


def main():
    args = sys.argv[1:]
    kind, out = args[0], args[1]
    probe = args[args.index("--probe") + 1] if "--probe" in args else None
    lay = Layout(out)
    ref = {"org.opencontainers.image.ref.name": "latest"}
    m = None
    global ONLY_GZIP
    if kind in ("busybox-gzip", "multi-gzip"):
        ONLY_GZIP = True
        kind = kind[:-5]
    if kind in ("busybox", "multi"):
        m = lay.manifest(busybox_layers(lay, probe, 3 if kind == "busybox" else 8))
    elif kind == "bad-digest":
        layers = simple(lay, [{"name": "f", "data": b"x"}])
        path = os.path.join(out, "blobs", "sha256", layers[0]["digest"][7:])
        raw = bytearray(open(path, "rb").read())
        raw[600] ^= 1  # inside the first member's data
        open(path, "wb").write(raw)
    elif kind == "missing-blob":
        layers = [lay.blob(tar_bytes([{"name": "f", "data": b"x"}]), "application/vnd.oci.image.layer.v1.tar", write=False)]
        m = lay.manifest(layers)
    elif kind == "other-platform":
        layers = simple(lay, [{"name": "f", "data": b"x"}])
        other = "arm64" if ARCH != "arm64" else "amd64"
        md = lay.blob(lay.manifest(layers, arch=other), "application/vnd.oci.image.manifest.v1+json",
                      platform={"os": "linux", "architecture": other})
        md2 = lay.blob(lay.manifest(layers, arch="s390x"), "application/vnd.oci.image.manifest.v1+json",
                       platform={"os": "linux", "architecture": "s390x"})
        sub = lay.blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                   "manifests": [md, md2]}), "application/vnd.oci.image.index.v1+json")
        lay.index([sub])
        return
    elif kind == "dotdot":
        layers = simple(lay, [{"name": "etc/", "type": "dir"}, {"name": "etc/../../escaped-dotdot", "data": b"x"}])
    elif kind == "abspath":
        layers = simple(lay, [{"name": "/tmp/escaped-abs", "data": b"x"}])
    elif kind == "symlink-escape":
        target = args[args.index("--target") + 1]
        layers = simple(lay, [{"name": "evil", "type": "sym", "target": target},
                              {"name": "evil/escaped-symlink", "data": b"x"}])
    elif kind == "hardlink-escape":
        layers = simple(lay, [{"name": "passwd-copy", "type": "link", "target": "../../../../etc/passwd"}])
    elif kind == "hardlink-abs":
        layers = simple(lay, [{"name": "passwd-copy", "type": "link", "target": "/etc/passwd"}])
    elif kind == "device":
        layers = simple(lay, [{"name": "dev/", "type": "dir"}, {"name": "dev/mem", "type": "chr"}])
    elif kind == "bad-whiteout":
        layers = simple(lay, [{"name": "etc/", "type": "dir"}, {"name": "etc/.wh..", "data": b""}])
    elif kind == "truncated-gzip":
        raw = gzip.compress(tar_bytes([{"name": "f", "data": os.urandom(200000)}]))
        raw = raw[: len(raw) // 2]
        layers = [lay.blob(raw, "application/vnd.oci.image.layer.v1.tar+gzip")]
    elif kind == "many-entries":
        ents = [{"name": "d%d/" % (i // 1000), "type": "dir"} for i in range(0, 100000, 1000)]
        ents += [{"name": "d%d/f%d" % (i // 1000, i)} for i in range(100000)]
        layers = simple(lay, ents, "gzip")
    elif kind == "nested10":
        layers = simple(lay, [{"name": "f", "data": b"x"}])
        d = lay.blob(lay.manifest(layers), "application/vnd.oci.image.manifest.v1+json")
        for _ in range(10):
            d = lay.blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                     "manifests": [d]}), "application/vnd.oci.image.index.v1+json")
        lay.index([d])
        return
    elif kind == "bad-json":
        d = lay.blob(b'{"schemaVersion": 2, "config": ', "application/vnd.oci.image.manifest.v1+json")
        lay.index([d])
        return
    else:
        sys.exit("unknown kind " + kind)
    if m is None:
        m = lay.manifest(layers)
    lay.index([lay.blob(m, "application/vnd.oci.image.manifest.v1+json", annotations=ref)])


if __name__ == "__main__":
    main()
