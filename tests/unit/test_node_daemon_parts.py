"""The node daemon finds its node's disk where `hotline cluster render` put it, or says why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from hotline.node_daemon import node_parts, run_node_daemon
from tests.support.config import write_config
from tools.cluster.layout import default_layout
from tools.cluster.nodes import node_config


def test_the_nodes_disk_is_the_rendered_one(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, cluster={}))
    parts = node_parts(config, "ast2")
    layout = default_layout(config, tmp_path / "etc", Path("/modules"))
    node = config.cluster.nodes[1]  # type: ignore[union-attr]
    assert parts.disk.node == "ast2"
    # the dialplan's HOTLINE_RECORDINGS on that node, and its astlogdir's cdr-csv
    assert parts.disk.recordings_dir == node_config(config, node, layout).recordings_dir
    assert parts.disk.master_csv == layout.node_state(node) / "log/cdr-csv/Master.csv"
    assert parts.disk.store_dir == tmp_path.resolve() / "var/cluster/recordings"
    ami = parts.node_config.asterisk.ami
    assert (ami.host, ami.port) == ("127.0.0.12", 5038)


def test_an_unknown_node_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, cluster={}))
    with pytest.raises(ConfigError, match=r"no node 'ast9' \(known: ast1, ast2\)"):
        run_node_daemon(config, "ast9")


def test_a_one_box_config_has_no_node_daemon(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    with pytest.raises(ConfigError, match="no cluster: section"):
        node_parts(config, "ast1")


def test_the_command_names_an_unknown_node_in_one_line(tmp_path: Path) -> None:
    """`hotline cluster node-daemon --node ast9`: the known nodes, no traceback."""
    from typer.testing import CliRunner

    from hotline.cli.main import app

    source = write_config(tmp_path, cluster={})
    done = CliRunner().invoke(app, ["cluster", "node-daemon", "--node", "ast9", "-c", str(source)])
    assert done.exit_code != 0, done.output
    assert "no node 'ast9' (known: ast1, ast2)" in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_the_daemons_pace_comes_from_the_config(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path, cluster={"ship_settle_seconds": 4, "ship_interval_seconds": 1.5})
    )
    assert config.cluster is not None
    assert (config.cluster.ship_settle_seconds, config.cluster.ship_interval_seconds) == (4, 1.5)
    with pytest.raises(ConfigError, match="ship_interval_seconds"):
        load_config(write_config(tmp_path / "bad", cluster={"ship_interval_seconds": 0}))
