"""Render the project's Asterisk configuration for one site.

The files in `asterisk/` and `dialplans/` are what Asterisk loads; the few
site values in them (ports, secrets, folders) are `@@NAME@@` placeholders
filled from config.yaml. A production Asterisk gets the same files through
`hotline asterisk render --out /etc/asterisk`. The dialplan's own `${...}`
variables are left alone, which is why the placeholders are not `${...}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from core.config import HotlineConfig, is_loopback
from core.paths import project_dir
from core.seats import seat_password, seats
from core.secrets import MIN_STRONG_LENGTH, SecretError, is_weak
from core.vocabulary import CallStep
from tools.local_asterisk.certs import certificate_paths

PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")


class RenderError(Exception):
    """A template names a value the renderer does not know."""


@dataclass(frozen=True)
class AsteriskLayout:
    """Where the rendered tree and Asterisk's writable folders live (as Asterisk sees them)."""

    etc_dir: Path
    state_dir: Path
    run_dir: Path
    module_dir: Path


def template_files() -> list[Path]:
    """Every configuration file the hotline ships, Asterisk's and the dialplan's."""
    root = project_dir()
    files = sorted((root / "asterisk").glob("*.conf")) + sorted((root / "dialplans").glob("*.conf"))
    if not files:
        raise RenderError(f"no Asterisk configuration found under {root}/asterisk and dialplans")
    return files


def checked_secrets(config: HotlineConfig) -> dict[str, str]:
    """The secrets to render; a weak one is refused where AMI or SIP leaves loopback."""
    ast = config.asterisk
    try:
        values = {"ami": config.ami_secret()}
        values |= {f"phone-{user}": config.phone_secret(user) for user in all_phones(config)}
    except SecretError as exc:
        raise RenderError(str(exc)) from None
    exposed = {
        "ami": not is_loopback(ast.ami.host),
        **{f"phone-{user}": not is_loopback(ast.sip.bind) for user in all_phones(config)},
    }
    for name, value in values.items():
        if exposed[name] and is_weak(value):
            where = "asterisk.ami.host" if name == "ami" else "asterisk.sip.bind"
            raise RenderError(
                f"{config.source}: {where} is not loopback, so the {name} secret must be "
                f"strong (at least {MIN_STRONG_LENGTH} characters, not a published default): "
                "unset the environment variable to have one generated"
            )
    return values


def all_phones(config: HotlineConfig) -> list[str]:
    """The citizen test phones (agents' phones are seats: `agents_conf`)."""
    return list(config.asterisk.sip.citizen_phones)


def ami_permit(config: HotlineConfig) -> str:
    """The AMI user's `permit` lines: loopback on one box, `cluster.ami_permit` on a node."""
    networks = config.cluster.ami_permit if config.cluster else [IPv4Network("127.0.0.0/8")]
    return "\n".join(f"permit = {net.network_address}/{net.netmask}" for net in networks)


def site_values(config: HotlineConfig, layout: AsteriskLayout) -> dict[str, str]:
    """The placeholder values for this site."""
    ast = config.asterisk
    wss = certificate_paths(layout.state_dir / "keys")
    return {
        "ETC_DIR": str(layout.etc_dir),
        "MOD_DIR": str(layout.module_dir),
        "ASTERISK_STATE": str(layout.state_dir),
        "RUN_DIR": str(layout.run_dir),
        "AMI_PORT": str(ast.ami.port),
        "AMI_BIND": ast.ami.host,
        "AMI_PERMIT": ami_permit(config),
        "AMI_USER": ast.ami.username,
        "AMI_SECRET": checked_secrets(config)["ami"],
        "SIP_BIND": ast.sip.bind,
        "SIP_PORT": str(ast.sip.port),
        "RTP_START": str(ast.sip.rtp_start),
        "RTP_END": str(ast.sip.rtp_end),
        "SOUNDS_DIR": str(config.sounds_dir),
        # the browser phones' secure WebSocket (http.conf, pjsip.conf transport-wss)
        "WSS_BIND": ast.sip.bind,
        "WSS_PORT": str(config.agents.wss_port),
        "WSS_CERT": str(wss.cert),
        "WSS_KEY": str(wss.key),
        # asterisk.conf [options]: the node's name in front of every Uniqueid (core.uniqueid)
        "SYSTEMNAME_OPTION": f"systemname = {ast.systemname}"
        if ast.systemname
        else "; systemname: none (one box)",
    }


def fill(text: str, values: dict[str, str], name: str) -> str:
    """Replace every @@NAME@@ in text; an unknown name is an error naming the file."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise RenderError(f"{name}: unknown placeholder @@{key}@@")
        return values[key]

    return PLACEHOLDER.sub(replace, text)


def globals_conf(config: HotlineConfig) -> str:
    """The dialplan's [globals]: where FastAGI listens and where files go."""
    lines = [
        "; written by `hotline asterisk render` from config.yaml; do not edit",
        "[globals]",
        f"HOTLINE_AGI=agi://{config.agi.host}:{config.agi.port}",
        # sent with every FastAGI request (?key=...): a local process cannot pose as Asterisk
        f"HOTLINE_AGI_KEY={agi_key(config)}",
        f"HOTLINE_RECORDINGS={config.recordings_dir}",
        f"HOTLINE_SOUNDS={config.sounds_dir}",
        f"HOTLINE_FALLBACK_LANG={config.prompts.languages[0]}",
        f"HOTLINE_RING_TIMEOUT={config.robot.ring_timeout_seconds}",
        f"HOTLINE_TZ={config.timezone}",
        f"HOTLINE_FALLBACK_SILENCE={max(config.ivr.record_silence_seconds, 1)}",
        f"HOTLINE_FALLBACK_MAX={config.ivr.record_max_seconds}",
        # the menus' key timeout in seconds (Read() in the bench's pure-dialplan IVR)
        f"HOTLINE_KEY_TIMEOUT={config.ivr.key_timeout_ms / 1000:g}",
        # the step the hang-up handler and the reconciler read for a dialplan-taken message
        f"HOTLINE_STEP_FALLBACK={CallStep.FALLBACK.value}",
    ]
    return "\n".join(lines) + "\n"


def agi_key(config: HotlineConfig) -> str:
    try:
        return config.agi_key()
    except SecretError as exc:
        raise RenderError(str(exc)) from None


GENERATED = "; written by `hotline asterisk render` from config.yaml; do not edit\n"


def phones_conf(config: HotlineConfig) -> str:
    """PJSIP endpoint, auth and aor sections for every configured phone, each its own secret."""
    secrets = checked_secrets(config)
    sections = []
    phones = [(p, "hotline-phones") for p in config.asterisk.sip.citizen_phones]
    for user, context in phones:
        sections.append(
            f"[{user}](phone-endpoint)\ncontext = {context}\nauth = {user}\naors = {user}\n"
            f'callerid = "{user}" <{user}>\n\n'
            f"[{user}](phone-auth)\nusername = {user}\npassword = {secrets[f'phone-{user}']}\n\n"
            f"[{user}](phone-aor)\n"
        )
    return "; written by `hotline asterisk render` from config.yaml; do not edit\n\n" + "\n".join(
        sections
    )


def lines_conf(config: HotlineConfig) -> str:
    """The hotline-in context: every configured DID enters the one IVR flow."""
    out = ["; written by `hotline asterisk render` from config.yaml; do not edit", "[hotline-in]"]
    for line in config.lines:
        out += [
            f"; {line.name}",
            f"exten => {line.did},1,Set(__HOTLINE_DID=${{EXTEN}})",
            " same => n,Goto(hotline-ivr,start,1)",
        ]
    # app_queue's `context`: the keys that leave the queue, for a message or for the
    # knowledge base's answers (which bring the caller back unless answered)
    out += [
        "",
        "[hotline-queue-exit]",
        f"exten => {config.agents.message_key},1,Set(HOTLINE_QUEUE_EXIT=key)",
        " same => n,Goto(hotline-ivr,after-queue,1)",
    ]
    if config.kb.enabled and config.kb.offer_key != config.agents.message_key:
        out += [
            f"exten => {config.kb.offer_key},1,Set(HOTLINE_QUEUE_EXIT=kb)",
            " same => n,Goto(hotline-ivr,kb,1)",
        ]
    return "\n".join(out) + "\n"


def agents_conf(config: HotlineConfig) -> str:
    """One PJSIP endpoint, auth and aor per agent seat (core.seats), each its own password."""
    agents = config.agents
    try:
        key = config.agent_sip_key()
    except SecretError as exc:
        raise RenderError(str(exc)) from None
    if not is_loopback(config.asterisk.sip.bind) and is_weak(key):
        raise RenderError(
            f"{config.source}: asterisk.sip.bind is not loopback, so the agent seats' key "
            f"${agents.sip_secret_env} must be strong (at least {MIN_STRONG_LENGTH} characters)"
        )
    sections = []
    for seat in seats(agents.webrtc_seats, agents.desk_seats):
        name = seat.endpoint
        sections.append(
            f"[{name}](agent-{seat.kind}-endpoint)\nauth = {name}\naors = {name}\n"
            f'callerid = "{name}" <{name}>\n\n'
            f"[{name}](phone-auth)\nusername = {name}\n"
            f"password = {seat_password(key, name)}\n\n"
            f"[{name}](agent-aor)\n"
        )
    return GENERATED + "\n" + "\n".join(sections)


def queues_conf(config: HotlineConfig) -> str:
    """One app_queue section per configured queue (members join and leave over AMI).

    joinempty/leavewhenempty: a caller never waits for nobody: with no agent
    logged in (or only unreachable phones) Queue ends at once with JOINEMPTY or
    LEAVEEMPTY and the flow offers the message. ringinuse=no with each member's
    state_interface (its phone) means an agent on any call is never rung.
    autopause=all: a phone that rings out (RONA) pauses its agent everywhere.
    """
    sounds = config.sounds_dir
    out = [GENERATED.rstrip()]
    for queue in config.queues:
        lang = sounds / queue.language
        out += [
            f"[{queue.name}]",
            f"strategy = {queue.strategy}",
            f"timeout = {queue.ring_seconds}",
            f"retry = {queue.retry_seconds}",
            f"wrapuptime = {queue.wrapup_seconds}",
            f"servicelevel = {queue.service_level_seconds}",
            "joinempty = unavailable,invalid,unknown",
            "leavewhenempty = unavailable,invalid,unknown",
            "ringinuse = no",
            f"autopause = {'all' if queue.pause_on_no_answer else 'no'}",
            "autopausedelay = 0",
            "autopausebusy = no",
            "autopauseunavail = no",
            "timeoutrestart = no",
            "timeoutpriority = conf",
            "setinterfacevar = yes",
            "setqueueentryvar = yes",
            "reportholdtime = no",
            "musicclass = default",
            # the caller's key while waiting leaves the queue for a message (announced once)
            "context = hotline-queue-exit",
            f"announce-frequency = {queue.announce_seconds}",
            f"min-announce-frequency = {min(queue.announce_seconds, 15)}",
            f"announce-position = {'yes' if queue.announce_seconds else 'no'}",
            "announce-position-limit = 0",
            f"announce-holdtime = {'yes' if queue.announce_seconds else 'no'}",
            "announce-round-seconds = 0",
            f"queue-youarenext = {lang / 'queue_you_are_next'}",
            f"queue-thereare = {lang / 'queue_there_are'}",
            f"queue-callswaiting = {lang / 'queue_calls_waiting'}",
            f"queue-holdtime = {lang / 'queue_hold_time'}",
            f"queue-minutes = {lang / 'queue_minutes'}",
            f"queue-minute = {lang / 'queue_minutes'}",
            f"queue-seconds = {lang / 'queue_seconds'}",
            f"queue-thankyou = {lang / 'queue_thank_you'}",
            f"queue-reporthold = {lang / 'queue_thank_you'}",
            f"periodic-announce = {lang / 'queue_still_waiting'}",
            f"periodic-announce-frequency = {queue.announce_seconds}",
            "",
        ]
    return "\n".join(out) + "\n"


def manager_test_user_conf(config: HotlineConfig) -> str:
    """The tests' AMI user (may write AstDB scripts: `system`), only where simulators run."""
    head = "; written by `hotline asterisk render` from config.yaml; do not edit\n"
    if not config.asterisk.include_simulators:
        return head + "; no test user: simulators disabled (asterisk.include_simulators: false)\n"
    try:
        secret = config.ami_test_secret()
    except SecretError as exc:
        raise RenderError(str(exc)) from None
    return head + (
        f"[{config.asterisk.ami.test_username}]\nsecret = {secret}\n"
        "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.0/255.0.0.0\n"
        "read = all\nwrite = system,call,originate,reporting,dialplan,user,agent\n"
        "writetimeout = 5000\n"
    )


def simulators_conf(config: HotlineConfig) -> str:
    """Include the scripted citizens only where the config allows them."""
    if config.asterisk.include_simulators:
        return '#include "sim-citizen.conf"\n'
    return "; simulators disabled (asterisk.include_simulators: false)\n"


def bench_conf(config: HotlineConfig) -> str:
    """Include the bench-only pure-dialplan IVR only where a capacity bench asks for it."""
    if config.asterisk.include_bench:
        return '#include "bench-ivr.conf"\n'
    return "; bench dialplan disabled (asterisk.include_bench: false)\n"


def render(config: HotlineConfig, layout: AsteriskLayout, out_dir: Path) -> list[Path]:
    """Write the full configuration tree for this site into out_dir; return the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    values = site_values(config, layout)
    written = []
    for template in template_files():
        target = out_dir / template.name
        target.write_text(fill(template.read_text(encoding="utf-8"), values, str(template)))
        written.append(target)
    generated = {
        "hotline_globals.conf": globals_conf(config),
        "pjsip_phones.conf": phones_conf(config),
        "hotline_simulators.conf": simulators_conf(config),
        "hotline_bench.conf": bench_conf(config),
        "hotline_queues.conf": queues_conf(config),
        "pjsip_agents.conf": agents_conf(config),
        "hotline_lines.conf": lines_conf(config),
        "manager_test_user.conf": manager_test_user_conf(config),
    }
    for name, text in generated.items():
        target = out_dir / name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    for path in written:  # secrets live in several of them: owner-only, all of them
        path.chmod(0o600)
    return written
