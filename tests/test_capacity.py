"""What bounds the streams a worker holds: the upstream pool and the open-file limit."""

from __future__ import annotations

import resource
import subprocess
import sys

from chaos import chaos


async def _pool(gw) -> tuple[int, int]:
    connector = gw.runtime.upstream.session.connector
    return connector.limit, connector.limit_per_host


def test_the_upstream_pool_has_no_limit_of_its_own_by_default(tmp_path):
    with chaos(tmp_path) as (_, gw):
        assert gw.call(_pool(gw)) == (0, 0)


def test_the_upstream_pool_limit_is_configurable(tmp_path):
    with chaos(tmp_path, "[server]\nupstream_connections = 5000\n") as (_, gw):
        assert gw.call(_pool(gw)) == (5000, 0)


def test_a_worker_raises_its_open_file_limit_up_to_the_hard_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    code = (
        "import resource as r; from router.serving import raise_open_files;"
        "r.setrlimit(r.RLIMIT_NOFILE, (256, r.getrlimit(r.RLIMIT_NOFILE)[1]));"
        "got = raise_open_files(4096);"
        "print(got, r.getrlimit(r.RLIMIT_NOFILE)[0])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == [str(want), str(want)]
