"""`hotline cluster render` (issue 22): every host's files, checked by the real tools.

A 2-node, 2-worker cluster is rendered into the test's folder; Kamailio and
HAProxy check their files themselves (`kamailio -c`, `haproxy -c`), each
node's Asterisk tree passes the checks the one-box renderer's tree passes
(tests/store/test_trust.py), and the two trees differ only where nodes must.
No store is used: it sits here because it runs programs outside the process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ClusterNode, ConfigError, HotlineConfig, load_config
from core.seats import seat_password, seats
from tests.support.config import write_config
from tests.support.programs import installed
from tools.cluster.checks import check_haproxy, check_kamailio
from tools.cluster.kamailio import phones_cfg
from tools.cluster.layout import ClusterLayout, kamailio_module_dir
from tools.cluster.render import render_cluster

ASTERISK_MODULES = Path("/usr/lib/x86_64-linux-gnu/asterisk/modules")
CLUSTER = {
    "front": {"algorithm": 10, "fr_timer_ms": 1500, "fr_inv_timer_ms": 45000},
    "nodes": [
        {"name": "ast1", "address": "127.0.0.11", "rtp_start": 10000, "rtp_end": 14999},
        {"name": "ast2", "address": "127.0.0.12", "rtp_start": 15000, "rtp_end": 19999},
    ],
    "workers": [
        {"name": "agi1", "address": "127.0.0.21", "agi_port": 4573, "health_port": 8346},
        {"name": "agi2", "address": "127.0.0.22", "agi_port": 4574, "health_port": 8347},
    ],
}


def cluster_config(folder: Path, **front: object) -> HotlineConfig:
    cluster = {**CLUSTER, "front": {**CLUSTER["front"], **front}}
    return load_config(write_config(folder, cluster=cluster))


def layout_in(folder: Path) -> ClusterLayout:
    return ClusterLayout(
        out_dir=folder / "out",
        state_dir=folder / "hosts",
        run_dir=folder / "run",
        asterisk_module_dir=ASTERISK_MODULES,
        kamailio_module_dir=kamailio_module_dir(),
    )


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[HotlineConfig, ClusterLayout]:
    config = cluster_config(tmp_path)
    layout = layout_in(tmp_path)
    render_cluster(config, layout)
    return config, layout


def nodes(config: HotlineConfig) -> list[ClusterNode]:
    assert config.cluster is not None
    return config.cluster.nodes


# -- Kamailio --------------------------------------------------------------------------------
def test_kamailio_accepts_its_config(rendered: tuple[HotlineConfig, ClusterLayout]) -> None:
    installed("kamailio")
    config, layout = rendered
    cfg = layout.kamailio_dir() / "kamailio.cfg"
    result = check_kamailio(cfg)
    assert result.ok, result.output
    assert "config file ok" in result.output
    # kamailio -c does not open the dispatcher list: the path it names must be the rendered one
    text = cfg.read_text()
    listed = re.search(r'"dispatcher", "list_file", "([^"]+)"', text)
    assert listed and Path(listed.group(1)) == layout.kamailio_dir() / "dispatcher.list"
    destinations = re.findall(
        r"^1 sip:(\S+) 0 0 duid=(\w+)", Path(listed.group(1)).read_text(), re.M
    )
    assert destinations == [(f"{n.address}:{n.sip_port}", n.name) for n in nodes(config)]


def test_kamailio_refuses_a_broken_config(rendered: tuple[HotlineConfig, ClusterLayout]) -> None:
    """The check has teeth: a misspelt dispatcher function fails it."""
    installed("kamailio")
    _config, layout = rendered
    cfg = layout.kamailio_dir() / "kamailio.cfg"
    broken = cfg.with_name("broken.cfg")
    broken.write_text(cfg.read_text().replace("ds_next_dst()", "ds_nxt_dst()"))
    result = check_kamailio(broken)
    assert not result.ok and "ds_nxt_dst" in result.reason()


def test_kamailio_dispatches_probes_and_fails_over_as_configured(
    rendered: tuple[HotlineConfig, ClusterLayout],
) -> None:
    _config, layout = rendered
    text = (layout.kamailio_dir() / "kamailio.cfg").read_text()
    for setting in (
        'ds_select_dst("1", "10")',
        '"ds_ping_interval", 1)',
        '"ds_probing_mode", 1)',
        '"ds_probing_threshold", 2)',
        '"fr_timer", 1500)',
        '"fr_inv_timer", 45000)',
        "listen=udp:127.0.0.10:5060",
        'loadmodule "websocket.so"',
        'loadmodule "registrar.so"',
        'save("location")',
        "record_route()",
    ):
        assert setting in text, setting
    failure = text.split("failure_route[NEXT_NODE] {")[1].split("\n}\n")[0]
    assert "ds_mark_dst(" in failure and "ds_next_dst()" in failure and "t_relay" not in failure
    assert "route(RELAY)" in failure and 't_on_failure("NEXT_NODE")' in failure


def test_the_phones_passwords_are_the_seats_own_and_readable_by_the_owner_only(
    rendered: tuple[HotlineConfig, ClusterLayout],
) -> None:
    config, layout = rendered
    secrets_file = layout.kamailio_dir() / "phones.cfg"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    text = secrets_file.read_text()
    key, agents = config.agent_sip_key(), config.agents
    every = seats(agents.webrtc_seats, agents.desk_seats)
    assert len(every) == agents.webrtc_seats + agents.desk_seats > 0
    for seat in every:  # what the seat's phone already uses with Asterisk
        assert f'$sht(phones=>{seat.endpoint}) = "{seat_password(key, seat.endpoint)}";' in text
    for user in config.asterisk.sip.citizen_phones:
        assert f'$sht(phones=>{user}) = "{config.phone_secret(user)}";' in text
    cfg = (layout.kamailio_dir() / "kamailio.cfg").read_text()
    assert f'include_file "{secrets_file}"' in cfg
    assert "seat_password" not in cfg and seat_password(key, every[0].endpoint) not in cfg
    registrar = cfg.split("route[REGISTRAR] {")[1].split("\n}\n")[0]
    assert "pv_www_authenticate(" in registrar and "www_challenge(" in registrar
    assert registrar.index("$au != $tU") < registrar.index('save("location")')


def test_a_password_kamailio_cannot_hold_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="6001's password"):
        phones_cfg({"6001": 'a"b'})


def test_algorithm_4_is_rendered(tmp_path: Path) -> None:
    layout = layout_in(tmp_path)
    render_cluster(cluster_config(tmp_path, algorithm=4), layout)
    assert 'ds_select_dst("1", "4")' in (layout.kamailio_dir() / "kamailio.cfg").read_text()


# -- HAProxy ---------------------------------------------------------------------------------
def test_haproxy_accepts_each_nodes_config(rendered: tuple[HotlineConfig, ClusterLayout]) -> None:
    installed("haproxy")
    config, layout = rendered
    for node in nodes(config):
        result = check_haproxy(layout.haproxy_file(node))
        assert result.ok, result.output


def test_each_nodes_haproxy_balances_over_every_worker(
    rendered: tuple[HotlineConfig, ClusterLayout],
) -> None:
    config, layout = rendered
    assert config.cluster is not None
    for node in nodes(config):
        text = layout.haproxy_file(node).read_text()
        assert "mode tcp" in text and "balance leastconn" in text and "option redispatch" in text
        assert f"bind {node.address}:{node.agi_port}" in text
        assert "uri /healthz" in text
        servers = re.findall(r"^\s+server (\S+) (\S+) check port (\d+)", text, re.M)
        assert servers == [
            (w.name, f"{w.address}:{w.agi_port}", str(w.health_port))
            for w in config.cluster.workers
        ]


# -- the nodes' Asterisk trees -----------------------------------------------------------------
def tree(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(folder.iterdir())}


def test_each_node_tree_passes_the_one_box_trees_checks(
    rendered: tuple[HotlineConfig, ClusterLayout],
) -> None:
    """The checks test_trust.py applies to the one-box tree, on every node's tree."""
    config, layout = rendered
    for node in nodes(config):
        folder = layout.node_dir(node)
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())  # secrets inside
        files = tree(folder)
        assert f"secret = {config.ami_secret()}" in files["manager.conf"]
        robot = files["manager.conf"].split(f"[{config.asterisk.ami.username}]")[1].split("\n[")[0]
        grants = {
            c.strip()
            for line in robot.splitlines()
            if line.startswith(("read", "write"))
            for c in line.split("=", 1)[1].split(",")
        }
        assert grants and not grants & {"system", "command", "config", "all"}
        loaded = set(re.findall(r"^load = (\S+)", files["modules.conf"], re.M))
        assert not {"app_system.so", "func_shell.so", "func_env.so"} & loaded
        assert "autoload = no" in files["modules.conf"]
        passwords = re.findall(r"password = (\S+)", files["pjsip_phones.conf"])
        passwords += re.findall(r"password = (\S+)", files["pjsip_agents.conf"])
        assert len(passwords) == len(set(passwords)) and min(map(len, passwords)) >= 20
        agi_urls = re.findall(r"AGI\(([^,)]*)", files["extensions.conf"])
        assert agi_urls and all(url.endswith("?key=${HOTLINE_AGI_KEY}") for url in agi_urls)


def test_each_node_has_its_own_name_addresses_and_the_front(
    rendered: tuple[HotlineConfig, ClusterLayout],
) -> None:
    config, layout = rendered
    for node in nodes(config):
        files = tree(layout.node_dir(node))
        assert re.search(rf"^systemname = {node.name}$", files["asterisk.conf"], re.M)
        assert f"bind = {node.address}:{node.sip_port}" in files["pjsip.conf"]
        assert f"bindaddr = {node.address}" in files["manager.conf"]
        # the robots, workers and console reach it from the cluster's networks only
        assert "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.0/255.0.0.0\n" in files["manager.conf"]
        assert f"port = {node.ami_port}" in files["manager.conf"]
        assert f"rtpstart = {node.rtp_start}\nrtpend = {node.rtp_end}" in files["rtp.conf"]
        assert (
            f"HOTLINE_AGI=agi://{node.address}:{node.agi_port}\n" in files["hotline_globals.conf"]
        )
        recordings = layout.node_state(node) / "recordings"
        assert f"HOTLINE_RECORDINGS={recordings}\n" in files["hotline_globals.conf"]
        assert files["pjsip.conf"].rstrip().endswith('#include "pjsip_front.conf"')
        front = files["pjsip_front.conf"]
        assert "type = identify\nendpoint = sip-front\nmatch = 127.0.0.10" in front
        assert "contact = sip:127.0.0.10:5060" in front
        assert "auth" not in front.replace("no authentication", "")  # OPTIONS get 200, not 401


def test_a_wider_ami_permit_reaches_every_nodes_manager(tmp_path: Path) -> None:
    cluster = {**CLUSTER, "ami_permit": ["127.0.0.0/8", "10.20.0.0/16"]}
    config = load_config(write_config(tmp_path, cluster=cluster))
    layout = layout_in(tmp_path)
    render_cluster(config, layout)
    for node in nodes(config):
        manager = tree(layout.node_dir(node))["manager.conf"]
        robot_user = manager.split(f"[{config.asterisk.ami.username}]")[1].split("\n[")[0]
        assert robot_user.count("permit = ") == 2, robot_user
        assert "permit = 10.20.0.0/255.255.0.0" in robot_user


def normalised(text: str, node: ClusterNode, layout: ClusterLayout) -> str:
    """A node's file with what is its own (folders, name, address, RTP range) replaced."""
    own = {
        str(layout.node_dir(node)): "TREE",
        str(layout.node_state(node)): "STATE",
        str(layout.run_dir / node.name): "RUN",
        f"systemname = {node.name}": "systemname = NODE",
        f"rtpstart = {node.rtp_start}": "rtpstart = START",
        f"rtpend = {node.rtp_end}": "rtpend = END",
        node.address: "ADDRESS",
    }
    for value, name in own.items():
        text = text.replace(value, name)
    return text


def test_the_node_trees_differ_only_where_nodes_must(
    rendered: tuple[HotlineConfig, ClusterLayout],
) -> None:
    config, layout = rendered
    first, second = nodes(config)
    one, two = tree(layout.node_dir(first)), tree(layout.node_dir(second))
    assert one.keys() == two.keys()
    differing = {name for name in one if one[name] != two[name]}
    assert differing <= {
        "asterisk.conf", "hotline_globals.conf", "http.conf", "manager.conf", "pjsip.conf",
        "pjsip_front.conf", "rtp.conf",
    }  # fmt: skip
    for name in one:
        assert normalised(one[name], first, layout) == normalised(two[name], second, layout), name


# -- the command -------------------------------------------------------------------------------
def test_rendering_again_changes_nothing_and_drops_a_removed_node(tmp_path: Path) -> None:
    config = cluster_config(tmp_path)
    layout = layout_in(tmp_path)
    first = render_cluster(config, layout)
    before = {path: path.read_bytes() for path in first}
    again = render_cluster(config, layout)
    assert again == first and {path: path.read_bytes() for path in again} == before
    assert config.cluster is not None
    one_node = config.model_copy(
        update={"cluster": config.cluster.model_copy(update={"nodes": nodes(config)[:1]})}
    )
    render_cluster(one_node, layout)
    assert not any((layout.out_dir / "nodes" / "ast2").iterdir())
    assert not (layout.out_dir / "haproxy" / "ast2.cfg").exists()
    assert "ast2" not in (layout.kamailio_dir() / "dispatcher.list").read_text()


def test_the_command_renders_and_checks(tmp_path: Path) -> None:
    installed("kamailio")
    installed("haproxy")
    path = write_config(tmp_path, cluster=CLUSTER)
    out = tmp_path / "rendered"
    command = [sys.executable, "-m", "hotline.cli", "cluster", "render", "--out", str(out)]
    done = subprocess.run(
        [*command, "--check", "-c", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "kamailio.cfg: ok" in done.stdout and "ast2.cfg: ok" in done.stdout
    assert (out / "nodes" / "ast2" / "asterisk.conf").exists()
    one_box = subprocess.run(
        [*command, "-c", str(write_config(tmp_path / "one-box"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert one_box.returncode == 2 and "no cluster: section" in one_box.stderr
