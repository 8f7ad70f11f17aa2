// The agent's browser phone: JsSIP over Asterisk's secure WebSocket, DTLS-SRTP audio.
//
// JsSIP 3.10.1 (npm jssip@3.10.1, MIT), vendored as ./vendor/jssip-3.10.1.min.js
//   sha256 c9dd9ba37244d472adc2cb7c5c327752a16a7b847345772f37fc2ae7ff72b1a1
//   (an ES module bundle, default export JsSIP; how it was built: vendor/README.md)
//
// Usage (an ES module; the console's CSP allows no inline script, so a page's own
// module file imports it):
//   import { createPhone } from "/static/agent_phone.js";
//   const phone = createPhone({ wsUrl, uri, password, audioElement, onEvent });
//   await phone.register();            // resolves once Asterisk accepted the REGISTER
//   onEvent({ type: "incoming", from, displayName, headers, header(name) })
//   await phone.answer();               // microphone on, resolves once the call is up
//   await phone.stats();                // { inbound: {energy, level, ...}, outbound: {...} }
//   phone.hangup(); await phone.unregister();
//
// Events (onEvent({ type, ... })): transport (state: connected | disconnected),
// registered, unregistered, registration-failed (cause), incoming, connected,
// ended (cause, originator), ice-timeout.

import JsSIP from "./vendor/jssip-3.10.1.min.js";

export const JSSIP_VERSION = "3.10.1";

// SIP headers an agent's page may want from an incoming INVITE besides the X- ones
const ASTERISK_HEADERS = ["P-Asserted-Identity", "Remote-Party-ID", "Alert-Info", "Call-Info"];

function inviteHeaders(request) {
  const headers = {};
  for (const name of Object.keys(request.headers || {})) {
    if (name.toLowerCase().startsWith("x-") || ASTERISK_HEADERS.includes(name)) {
      headers[name] = request.getHeader(name);
    }
  }
  return headers;
}

// RTCPeerConnection getStats: audio energy in and out (totalAudioEnergy grows while sound flows)
async function audioStats(connection) {
  const result = {
    inbound: { energy: 0, level: 0, seconds: 0, packets: 0, bytes: 0 },
    outbound: { energy: 0, level: 0, seconds: 0, packets: 0, bytes: 0 },
    ice: "",
    dtls: "",
  };
  if (!connection) return result;
  const report = await connection.getStats();
  report.forEach((stat) => {
    if (stat.kind !== "audio" && stat.mediaType !== "audio" && stat.type !== "transport") return;
    if (stat.type === "inbound-rtp") {
      Object.assign(result.inbound, {
        energy: stat.totalAudioEnergy || 0,
        level: stat.audioLevel || 0,
        seconds: stat.totalSamplesDuration || 0,
        packets: stat.packetsReceived || 0,
        bytes: stat.bytesReceived || 0,
      });
    } else if (stat.type === "media-source") {
      Object.assign(result.outbound, {
        energy: stat.totalAudioEnergy || 0,
        level: stat.audioLevel || 0,
        seconds: stat.totalSamplesDuration || 0,
      });
    } else if (stat.type === "outbound-rtp") {
      Object.assign(result.outbound, {
        packets: stat.packetsSent || 0,
        bytes: stat.bytesSent || 0,
      });
    } else if (stat.type === "transport") {
      result.ice = stat.iceState || "";
      result.dtls = stat.dtlsState || "";
    }
  });
  return result;
}

/**
 * A phone for one agent seat.
 * wsUrl: wss://HOST:PORT/ws (Asterisk's http.conf TLS server)
 * uri: sip:agent-w001@HOST; password: the seat's password (core/seats.py)
 * audioElement: an <audio> element that plays the caller
 * iceGatheringTimeout: ms after the first ICE candidate before the answer goes out anyway
 *   (no STUN, no TURN: host candidates are all there is, and waiting for the end of
 *   gathering can take seconds on a machine with idle interfaces)
 */
export function createPhone({
  wsUrl,
  uri,
  password,
  audioElement,
  onEvent = () => {},
  displayName = "",
  iceGatheringTimeout = 300,
  registerExpires = 120,
  registerTimeout = 10000,
}) {
  const socket = new JsSIP.WebSocketInterface(wsUrl);
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri,
    password,
    display_name: displayName || undefined,
    register: false,
    register_expires: registerExpires,
    session_timers: false,
    user_agent: `12345-hotline agent phone (JsSIP ${JSSIP_VERSION})`,
  });
  const emit = (type, detail = {}) => {
    try {
      onEvent({ type, ...detail });
    } catch (error) {
      console.error("agent phone: onEvent failed", error);
    }
  };
  let session = null;
  let remoteStream = null;

  const playRemote = (track) => {
    if (!remoteStream) remoteStream = new MediaStream();
    remoteStream.addTrack(track);
    if (audioElement) {
      audioElement.srcObject = remoteStream;
      const playing = audioElement.play();
      if (playing && playing.catch) playing.catch((error) => emit("audio-blocked", { error: String(error) }));
    }
  };

  const watchConnection = (connection) => {
    connection.addEventListener("track", (event) => {
      if (event.track.kind === "audio") playRemote(event.track);
    });
  };

  ua.on("connected", () => emit("transport", { state: "connected" }));
  ua.on("disconnected", () => emit("transport", { state: "disconnected" }));
  ua.on("registered", () => emit("registered"));
  ua.on("unregistered", () => emit("unregistered"));
  ua.on("registrationFailed", (event) => emit("registration-failed", { cause: event.cause }));

  ua.on("newRTCSession", ({ session: incoming, originator, request }) => {
    if (originator !== "remote") return;
    if (session) {
      incoming.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    session = incoming;
    remoteStream = null;
    let iceTimer = null;
    let connection = null;
    const stopIceTimer = () => {
      if (iceTimer !== null) clearTimeout(iceTimer);
      iceTimer = null;
    };
    incoming.on("peerconnection", ({ peerconnection }) => {
      connection = peerconnection;
      watchConnection(peerconnection);
    });
    // JsSIP sends the answer once ICE gathering is complete; with host candidates only that
    // is at once, but an idle interface may keep it "gathering" for seconds: go anyway
    incoming.on("icecandidate", ({ ready }) => {
      if (iceTimer !== null) return;
      iceTimer = setTimeout(() => {
        iceTimer = null;
        if (connection && connection.iceGatheringState === "complete") return;
        emit("ice-timeout");
        ready();
      }, iceGatheringTimeout);
    });
    incoming.on("sdp", ({ originator }) => {
      if (originator === "local") stopIceTimer();
    });
    incoming.on("confirmed", () => emit("connected"));
    const finish = (cause, by) => {
      stopIceTimer();
      if (session === incoming) session = null;
      if (audioElement) audioElement.srcObject = null;
      emit("ended", { cause, originator: by });
    };
    incoming.on("ended", (event) => finish(event.cause, event.originator));
    incoming.on("failed", (event) => finish(event.cause, event.originator));
    const from = incoming.remote_identity;
    emit("incoming", {
      from: from.uri.user,
      displayName: from.display_name || "",
      headers: inviteHeaders(request),
      header: (name) => request.getHeader(name),
    });
  });

  const once = (good, bad) =>
    new Promise((resolve, reject) => {
      const ok = () => {
        ua.removeListener(bad, ko);
        resolve();
      };
      const ko = (event) => {
        ua.removeListener(good, ok);
        reject(new Error(`${bad}: ${event && event.cause}`));
      };
      ua.once(good, ok);
      ua.once(bad, ko);
    });

  return {
    ua,
    get session() {
      return session;
    },
    /**
     * Connect the WebSocket and REGISTER; resolves when Asterisk answers 200. Rejects
     * when the first WebSocket never opens (the certificate refused, a CSP connect-src
     * without the wss origin, Asterisk down: the browser does not say which) or no
     * answer comes within registerTimeout ms; the phone is stopped then, call again.
     */
    register() {
      const done = once("registered", "registrationFailed");
      if (ua.isConnected()) {
        ua.register();
        return done;
      }
      // a REGISTER sent before the WebSocket is open fails at once ("Connection Error")
      const onConnected = () => ua.register();
      ua.once("connected", onConnected);
      let onDisconnected;
      let timer;
      const failed = new Promise((resolve, reject) => {
        onDisconnected = () => reject(new Error(`WebSocket ${wsUrl} did not open`));
        ua.once("disconnected", onDisconnected);
        timer = setTimeout(
          () => reject(new Error(`no registration within ${registerTimeout} ms`)),
          registerTimeout,
        );
      });
      ua.start();
      return Promise.race([done, failed]).then(
        () => {
          clearTimeout(timer);
          ua.removeListener("disconnected", onDisconnected);
        },
        (error) => {
          clearTimeout(timer);
          ua.removeListener("disconnected", onDisconnected);
          ua.removeListener("connected", onConnected);
          ua.stop();
          throw error;
        },
      );
    },
    /** REGISTER with expires 0, then close the WebSocket. */
    async unregister() {
      if (ua.isRegistered()) {
        const done = once("unregistered", "registrationFailed");
        ua.unregister();
        await done.catch(() => {});
      }
      ua.stop();
    },
    /** Answer the ringing call with the microphone; resolves once the call is confirmed. */
    answer() {
      if (!session) return Promise.reject(new Error("no call to answer"));
      const current = session;
      const up = new Promise((resolve, reject) => {
        current.once("confirmed", resolve);
        current.once("failed", (event) => reject(new Error(`failed: ${event.cause}`)));
      });
      current.answer({
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: [], rtcpMuxPolicy: "require", bundlePolicy: "max-bundle" },
      });
      return up;
    },
    /** Hang up (or refuse, while ringing) the current call. */
    hangup() {
      if (session && !session.isEnded()) session.terminate();
    },
    mute(on = true) {
      if (session) (on ? session.mute : session.unmute).call(session, { audio: true });
    },
    /** Audio energy in (the caller) and out (the microphone) from getStats. */
    stats() {
      return audioStats(session ? session.connection : null);
    },
  };
}
