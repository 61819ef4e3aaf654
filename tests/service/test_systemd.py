"""The service's system integration, checked with systemd's own tools (systemd 252 here and in CI).

`scripts/install --root TMP --no-start --no-venv` lays everything out under a temporary root (with
an `airsync` there that runs this checkout's); then `systemd-analyze verify --root` checks the units
as installed, `systemd-analyze security --offline` rates their sandbox, `udevadm test` runs the udev
rule (in a private mount namespace, so the machine's rules directory is never touched), and the
USB mount helper mounts a real ext4 loop device. Nothing here needs a running systemd or the network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"
INSTALL = REPO / "scripts" / "install"
HELPER = SYSTEMD / "airsync-usb"
UNITS = ("airsync.service", "airsync-usb@.service", "airsync-serve@.service")
TIMEOUT = 60

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs into a root and mounts: needs root (CI runs as root)")


def run(*args, check=True, env=None, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def install(root: Path) -> subprocess.CompletedProcess:
    return run(INSTALL, "--root", root, "--no-start", "--no-venv")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A root with airsync installed into it (the venv replaced by a wrapper around this checkout's)."""
    root = tmp_path_factory.mktemp("root")
    venv_bin = root / "opt/airsync/venv/bin"
    venv_bin.mkdir(parents=True)
    airsync = venv_bin / "airsync"
    airsync.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m airsync "$@"\n')
    airsync.chmod(0o755)
    install(root)
    return root


@pytest.fixture(scope="module")
def verify_root(root) -> Path:
    """The installed root plus what `systemd-analyze --root` looks up besides our units: the
    system's own units (targets our units are ordered against) and the commands they run."""
    for name in ("usr/bin", "usr/lib"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("lib", "usr/lib")):
        if not (root / link).is_symlink():
            (root / link).symlink_to(target)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    shutil.copy2("/usr/bin/kill", root / "usr/bin/kill")
    return root


def ids(root: Path) -> tuple[int, int]:
    user = [ln.split(":") for ln in (root / "etc/passwd").read_text().splitlines() if ln.startswith("airsync:")]
    group = [ln.split(":") for ln in (root / "etc/group").read_text().splitlines() if ln.startswith("airsync:")]
    assert len(user) == 1 and len(group) == 1, "exactly one airsync user and group"
    return int(user[0][2]), int(group[0][2])


def owner_mode(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, st.st_mode & 0o7777


def unit_settings(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (repeated keys accumulate), sections ignored."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


# --- scripts/install ----------------------------------------------------------------------------


def test_install_lays_out_everything(root):
    uid, gid = ids(root)
    passwd = (root / "etc/passwd").read_text()
    assert f"airsync:x:{uid}:{gid}:airsync Go module mirror:/var/lib/airsync:/usr/sbin/nologin" in passwd
    assert uid < 1000, "a system user"

    for path, mode in (
        ("usr/local/lib/systemd/system/airsync.service", 0o644),
        ("usr/local/lib/systemd/system/airsync-usb@.service", 0o644),
        ("usr/local/lib/systemd/system/airsync-serve@.service", 0o644),
        ("etc/udev/rules.d/61-airsync.rules", 0o644),
        ("usr/lib/sysusers.d/airsync.conf", 0o644),
        ("usr/lib/tmpfiles.d/airsync.conf", 0o644),
        ("opt/airsync/libexec/airsync-usb", 0o755),
        ("opt/airsync/doc/systemd.md", 0o644),
        ("opt/airsync/doc/conf.example.toml", 0o644),  # where airsync init's config points
    ):
        assert owner_mode(root / path) == (0, 0, mode), path
    assert (root / "opt/airsync/doc/conf.example.toml").read_bytes() == (REPO / "conf.example.toml").read_bytes()
    for name in UNITS:
        assert (root / "usr/local/lib/systemd/system" / name).read_bytes() == (SYSTEMD / name).read_bytes()
    assert os.readlink(root / "usr/local/bin/airsync") == "/opt/airsync/venv/bin/airsync"

    # tmpfiles.d: state owned by the service, config and USB mount points by root
    assert owner_mode(root / "etc/airsync") == (0, gid, 0o750)
    assert owner_mode(root / "var/lib/airsync") == (uid, gid, 0o750)
    assert owner_mode(root / "var/lib/airsync/mirror") == (uid, gid, 0o750)
    assert owner_mode(root / "var/lib/airsync/requests") == (uid, gid, 0o2770)
    assert owner_mode(root / "run/airsync-media") == (0, gid, 0o750)

    # the media signing key, made by this checkout's `airsync keygen`
    assert owner_mode(root / "etc/airsync/signing.key") == (uid, gid, 0o600)
    assert owner_mode(root / "etc/airsync/signing.pub") == (0, gid, 0o644)


def test_install_is_idempotent_and_keeps_the_key(root):
    key = (root / "etc/airsync/signing.key").read_bytes()
    before = ids(root)
    proc = install(root)
    assert ids(root) == before
    assert (root / "etc/airsync/signing.key").read_bytes() == key
    assert "signing key" not in proc.stdout, "no second key"
    assert [ln for ln in (root / "etc/passwd").read_text().splitlines() if ln.startswith("airsync:")] == [
        f"airsync:x:{before[0]}:{before[1]}:airsync Go module mirror:/var/lib/airsync:/usr/sbin/nologin"
    ]


def test_install_config_from_airsync_init_when_there_is_one(root):
    conf = root / "etc/airsync/airsync.toml"
    has_init = run(root / "opt/airsync/venv/bin/airsync", "init", "--help", check=False).returncode == 0
    if has_init:
        assert owner_mode(conf) == (0, ids(root)[1], 0o640)
    else:  # until the daemon's `init` lands, install says so instead of failing
        assert not conf.exists()
        assert "no 'init' command" in install(root).stdout


def test_install_refuses_bad_usage(tmp_path):
    assert run(INSTALL, "--bogus", check=False).returncode == 2
    assert run(INSTALL, "--root", tmp_path / "missing", check=False).returncode == 2


# --- the units ----------------------------------------------------------------------------------


def analyze(root: Path, *args) -> subprocess.CompletedProcess:
    return run("systemd-analyze", f"--root={root}", *args, check=False)


def test_units_verify(verify_root):
    proc = analyze(verify_root, "verify", "airsync.service", "airsync-usb@sdb1.service", "airsync-serve@8081.service")
    # systemd-analyze verify exits 0 on mere warnings (unknown keys, bad values): any output fails.
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stdout + proc.stderr


def test_verify_would_catch_a_bad_unit(verify_root, tmp_path):
    """The check above can fail: a misspelt key and a missing binary are reported."""
    bad = verify_root / "usr/local/lib/systemd/system/airsync-bad.service"
    text = (SYSTEMD / "airsync.service").read_text()
    bad.write_text(text.replace("ProtectSystem=", "ProtectSytem=").replace("venv/bin/airsync", "venv/bin/nope"))
    try:
        proc = analyze(verify_root, "verify", "airsync-bad.service")
    finally:
        bad.unlink()
    assert "Unknown key" in proc.stderr and "ProtectSytem" in proc.stderr
    assert "nope is not executable" in proc.stderr and proc.returncode != 0


@pytest.mark.parametrize("unit, limit", [("airsync.service", 1.5), ("airsync-usb@sdb1.service", 1.0),
                                         ("airsync-serve@8081.service", 1.5)])
def test_security_exposure(verify_root, unit, limit):
    proc = analyze(verify_root, "security", "--offline=true", "--no-pager", unit)
    m = re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= limit, proc.stdout


def test_service_contract():
    """What the daemon and the install script rely on (see systemd/README.md)."""
    s = unit_settings((SYSTEMD / "airsync.service").read_text())
    assert s["ExecStart"] == ["/opt/airsync/venv/bin/airsync run --config /etc/airsync/airsync.toml"]
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["User"] == s["Group"] == ["airsync"]
    assert s["RuntimeDirectory"] == s["StateDirectory"] == s["ConfigurationDirectory"] == ["airsync"]
    assert s["ReadWritePaths"] == ["/run/airsync-media"]
    assert s["ProtectSystem"] == ["strict"] and s["CapabilityBoundingSet"] == [""]
    for key in ("WatchdogSec", "TimeoutStopSec"):
        assert re.fullmatch(r"\d+s", s[key][0]), key

    u = unit_settings((SYSTEMD / "airsync-usb@.service").read_text())
    assert u["BindsTo"] == ["dev-%i.device"]
    assert u["Requires"] == ["airsync.service"] and "airsync.service" in u["After"]
    assert u["Type"] == ["oneshot"] and u["RemainAfterExit"] == ["yes"]
    assert u["ExecStart"] == [
        "+/opt/airsync/libexec/airsync-usb mount %i",
        "/opt/airsync/venv/bin/airsync usb-attach /run/airsync-media/%i --label %i",
    ]
    assert u["ExecStopPost"] == ["+/opt/airsync/libexec/airsync-usb umount %i"]

    v = unit_settings((SYSTEMD / "airsync-serve@.service").read_text())
    assert v["ExecStart"] == ["/opt/airsync/venv/bin/airsync --log-format json serve ${AIRSYNC_STORE} "
                              "--listen ${AIRSYNC_SERVE_ADDRESS}:%i $AIRSYNC_SERVE_OPTIONS"]
    assert v["EnvironmentFile"] == ["/etc/airsync/serve.env"] and v["User"] == ["airsync"]
    assert v["ProtectSystem"] == ["strict"] and "StateDirectory" not in v


def test_sysusers_and_tmpfiles_parse(root):
    """Both tools stop or complain on a bad line; on ours a second pass has nothing to do."""
    proc = run("systemd-sysusers", "--root", root, "--dry-run", "airsync.conf")
    assert proc.stdout == "" and proc.stderr == "", proc.stderr
    proc = run("systemd-tmpfiles", "--root", root, "--create", "airsync.conf")
    assert proc.stderr == "", proc.stderr


# --- the udev rule ------------------------------------------------------------------------------


def some_block_device(need_node: bool = True) -> str:
    """A block device's kernel name; with need_node, one that also has its /dev node."""
    for name in sorted(os.listdir("/sys/class/block")):
        if not need_node:
            return name
        if Path(f"/dev/{name}").is_block_device():
            return name
    raise AssertionError("no block device to run udev rules against")


def udev_properties(tmp_path: Path, fake: str, action: str = "add") -> tuple[dict[str, str], str]:
    """Run the rules (the system's, ours, and a `fake` rule setting what a USB stick's earlier
    rules would) against a real block device, in a mount namespace of its own where our rules
    directory stands in for /etc/udev/rules.d."""
    rules = tmp_path / "rules.d"
    rules.mkdir(exist_ok=True)
    shutil.copy(SYSTEMD / "61-airsync.rules", rules / "61-airsync.rules")
    # sorts after 60-persistent-storage.rules, before ours
    (rules / "60-zz-airsync-test.rules").write_text(fake + "\n")
    dev = some_block_device(need_node=False)
    proc = run(
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        f'mount --bind "{rules}" /etc/udev/rules.d && exec udevadm test --action={action} /sys/class/block/{dev}',
    )
    log = proc.stdout + proc.stderr
    assert "Reading rules file: /etc/udev/rules.d/61-airsync.rules" in log
    for line in log.splitlines():  # a syntax error is logged with the file's name and line
        assert "61-airsync.rules" not in line or line.startswith("Reading rules file"), line
    props = dict(line.split("=", 1) for line in proc.stdout.splitlines() if re.match(r"^[A-Z_]+=", line))
    return props, dev


STICK = 'SUBSYSTEM=="block", ENV{ID_BUS}="usb", ENV{ID_FS_USAGE}="filesystem", ENV{ID_FS_TYPE}="vfat"'


def test_udev_rule_pulls_in_the_usb_unit(tmp_path):
    props, dev = udev_properties(tmp_path, STICK)
    assert props.get("SYSTEMD_WANTS") == f"airsync-usb@{dev}.service"
    assert "systemd" in props.get("TAGS", "").split(":")


@pytest.mark.parametrize(
    "fake, action",
    [
        ('SUBSYSTEM=="block", ENV{ID_BUS}="ata", ENV{ID_FS_USAGE}="filesystem"', "add"),  # not USB
        ('SUBSYSTEM=="block", ENV{ID_BUS}="usb", ENV{ID_FS_USAGE}="raid"', "add"),  # no file system
        (STICK + ', ENV{AIRSYNC_IGNORE}="1"', "add"),  # opted out
        (STICK, "remove"),
    ],
    ids=["ata", "raid", "ignored", "remove"],
)
def test_udev_rule_leaves_other_devices_alone(tmp_path, fake, action):
    props, _ = udev_properties(tmp_path, fake, action)
    assert "airsync" not in props.get("SYSTEMD_WANTS", "")


# --- the USB mount helper -----------------------------------------------------------------------


def helper(media: Path, *args, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, AIRSYNC_MEDIA_ROOT=str(media), AIRSYNC_USER="nobody")
    if path:
        env["PATH"] = path
    return run(HELPER, *args, check=False, env=env)


def fake_tools(tmp_path: Path, fstype: str) -> str:
    """blkid, findmnt, mount, umount and mountpoint stand-ins that record the mount's options."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(parents=True)
    log = tmp_path / "mount.log"
    tools = {
        "blkid": f"echo {fstype}",
        "findmnt": "exit 1",
        "mount": f'echo "$@" > {log}; for a; do t=$a; done; touch "$t/.airsync-medium"',
        "umount": "exit 0",
        "mountpoint": "exit 1",
        "chown": "exit 0",
    }
    for name, body in tools.items():
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    return f"{bin_}:{os.environ['PATH']}"


@pytest.mark.parametrize(
    "fstype, options",
    [
        ("vfat", "nosuid,nodev,noexec,noatime,uid={uid},gid={gid},umask=077,flush"),
        ("exfat", "nosuid,nodev,noexec,noatime,uid={uid},gid={gid},umask=077"),
        ("ext4", "nosuid,nodev,noexec,noatime"),
    ],
)
def test_helper_mount_options(tmp_path, fstype, options):
    path = fake_tools(tmp_path, fstype)
    dev = some_block_device()
    proc = helper(tmp_path / "media", "mount", dev, path=path)
    assert proc.returncode == 0, proc.stderr
    nobody = run("id", "-u", "nobody").stdout.strip(), run("id", "-g", "nobody").stdout.strip()
    expected = options.format(uid=nobody[0], gid=nobody[1])
    assert (tmp_path / "mount.log").read_text().split() == [
        "-t", fstype, "-o", expected, f"/dev/{dev}", str(tmp_path / "media" / dev)
    ]


def test_helper_refuses(tmp_path):
    media = tmp_path / "media"
    path = fake_tools(tmp_path, "ntfs")
    dev = some_block_device()
    assert "not supported" in helper(media, "mount", dev, path=path).stderr
    for name in ("../sda1", ".hidden", ""):
        assert "bad device name" in helper(media, "mount", name).stderr
    assert "not a block device" in helper(media, "mount", "nosuchdevice0").stderr
    assert helper(media, "eject", dev).returncode != 0
    # something in the way of the mount point (say, a planted symlink) is never followed
    media.mkdir()
    (media / dev).symlink_to("/etc")
    proc = helper(media, "mount", dev, path=fake_tools(tmp_path / "x", "vfat"))
    assert proc.returncode != 0 and "in the way" in proc.stderr
    assert (media / dev).is_symlink() and not (tmp_path / "x" / "mount.log").exists()


@pytest.fixture
def ext4_stick(tmp_path):
    """An ext4 file system on a loop device; `marked` decides whether airsync's marker is on it."""
    made = []

    def make(marked: bool) -> str:
        content = tmp_path / f"content{len(made)}"
        content.mkdir()
        if marked:
            (content / ".airsync-medium").write_text("airsync medium\n")
        img = tmp_path / f"stick{len(made)}.img"
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        run("mkfs.ext4", "-q", "-F", "-d", content, img)
        loop = run("losetup", "--find", "--show", img).stdout.strip()
        made.append(loop)
        return os.path.basename(loop)

    yield make
    for loop in made:
        subprocess.run(["umount", "-l", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def mounted_at(point: Path) -> str | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(point):
            return fields[5]
    return None


def test_helper_mounts_a_marked_ext4_stick(tmp_path, ext4_stick):
    media = tmp_path / "media"
    dev = ext4_stick(marked=True)
    proc = helper(media, "mount", dev)
    assert proc.returncode == 0, proc.stderr
    point = media / dev
    options = mounted_at(point)
    assert options and {"rw", "nosuid", "nodev", "noexec", "noatime"} <= set(options.split(","))
    nobody = int(run("id", "-u", "nobody").stdout)
    assert point.stat().st_uid == nobody, "the medium's root is given to the service user"
    # the same device twice: refused, the first mount untouched
    assert "already mounted" in helper(media, "mount", dev).stderr
    assert mounted_at(point)

    # busy (the daemon still has a file open): detached lazily, the point removed
    with open(point / "busy", "w"):
        proc = helper(media, "umount", dev)
        assert proc.returncode == 0, proc.stderr
        assert mounted_at(point) is None and not point.exists()
    assert helper(media, "umount", dev).returncode == 0, "unmounting twice is fine"


def test_helper_refuses_an_unmarked_stick(tmp_path, ext4_stick):
    media = tmp_path / "media"
    dev = ext4_stick(marked=False)
    proc = helper(media, "mount", dev)
    assert proc.returncode != 0 and "not an airsync medium" in proc.stderr
    assert "airsync usb-init" in proc.stderr
    assert mounted_at(media / dev) is None and not (media / dev).exists(), "never left mounted"
