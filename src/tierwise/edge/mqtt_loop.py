"""A paho-mqtt client driven by the asyncio event loop: no network thread, no locks crossed.

paho can run its network loop in a thread of its own, but then every message crosses to the
agent's event loop and back (two wake-ups per request, the GIL fought over). Instead, paho's
socket callbacks register its socket with the running loop (as paho's own asyncio example
does): reads, writes and keep-alives happen on the loop, and `on_message` runs there too.

Writes are gathered per loop turn: paho sends each packet with a `send` of its own (an
answer and the acknowledgement of its request are two system calls, each waking the broker).
`CorkedClient` hands paho's packet bytes to a buffer instead, and the driver sends what the
turn produced in one `send` on the loop's next turn (a lone packet waits one `call_soon`
hop, not for others). paho still builds and parses every packet; only the socket write moves.

Connecting (a blocking socket connect, a TLS handshake) runs in a worker thread so a slow or
black-holed broker never stalls the loop; the socket callbacks it triggers are handed to
the loop. The client reconnects with capped exponential backoff until `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties

from tierwise.edge.mqtt_properties import QuickProperties, install_quick_properties
from tierwise.edge.mqtt_wire import BrokerAddress, MqttCredentials

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 5.0
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 10.0
MISC_INTERVAL_S = 1.0  # paho's keep-alive and retry bookkeeping
READ_CHUNK = 64 * 1024  # bytes taken from the socket at once

SocketLike = Any  # paho hands over a socket.socket or an ssl.SSLSocket
_TRY_LATER = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class CorkedClient(paho.Client):
    """paho's client whose socket writes go to `corked` while a `LoopDriver` drives it, and
    whose reads come from a buffer filled READ_CHUNK bytes at a time.

    Overrides paho's two socket methods (`_sock_send`, `_sock_recv`: private, unchanged
    since paho 1.x; the MQTT tests run every byte through them) and its message dispatch
    (`_handle_on_message`: straight to `on_message` unless per-topic callbacks were added).
    paho takes each packet as sent; the driver owns getting the bytes out, and a connection
    whose send fails is shut down so paho's read side sees it lost and reconnects (QoS 1
    messages are resent then).
    paho reads a packet in three or more `recv`s (its type byte, each length byte, the
    rest): from the buffer they cost no system call.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.corked: bytearray | None = None  # None: paho's own writes and reads (no driver)
        self._received = b""
        self._received_at = 0  # what paho has taken of `_received`
        self._topic_callbacks = False  # `message_callback_add` was called

    @property
    def buffered(self) -> bool:
        """Bytes received that paho has not read yet."""
        return self._received_at < len(self._received)

    def drop_buffered(self) -> None:
        """Forget what was received on a connection that is gone."""
        self._received, self._received_at = b"", 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self.corked is None:
            return super()._sock_recv(bufsize)
        if not self.buffered:
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError when there is none
            if len(data) <= bufsize:
                return data
            self._received, self._received_at = data, 0
        start = self._received_at
        self._received_at = start + bufsize
        return self._received[start : start + bufsize]

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._topic_callbacks = True
        super().message_callback_add(sub, callback)

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        # paho walks its per-topic callback trie under two locks for every message; with no
        # per-topic callback (tierwise adds none) that is `on_message` alone, on this thread.
        on_message = self.on_message
        if self._topic_callbacks or on_message is None:
            super()._handle_on_message(message)
        else:
            on_message(self, self._userdata, message)

    def _sock_send(self, buf: bytes | bytearray) -> int:
        corked = self.corked
        if corked is None:
            return super()._sock_send(buf)
        if self.socket() is None:
            raise ConnectionError("no socket")
        corked += buf
        return len(buf)


def new_client(
    client_id: str,
    credentials: MqttCredentials,
    tls: bool,
    v5: bool = True,
    manual_ack: bool = False,
    persistent: bool = False,
) -> CorkedClient:
    """A paho 2.x client (v2 callbacks), credentials and TLS set, unlimited local in-flight
    (the broker's Receive Maximum is the limit that counts). `persistent`: for 3.1.1, keep
    the session (v5 says so when connecting: `LoopDriver(clean_start=False)`)."""
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    install_quick_properties()  # paho reads received properties 2-3x faster (its own code)
    client = CorkedClient(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.connect_timeout = CONNECT_TIMEOUT_S
    if credentials.username is not None:
        client.username_pw_set(credentials.username, credentials.password)
    if tls:
        client.tls_set(ca_certs=str(credentials.ca_file) if credentials.ca_file else None)
    return client


def properties(packet_type: int) -> Properties:
    """Empty MQTT v5 properties for a packet type (see mqtt_properties.py)."""
    return QuickProperties(packet_type)


class LoopDriver:
    """Runs `client`'s network I/O on the current event loop and keeps it connected."""

    def __init__(
        self,
        client: CorkedClient,
        broker: BrokerAddress,
        clean_start: bool = True,
        connect_properties: Properties | None = None,
    ) -> None:
        self.client = client
        self.broker = broker
        self.clean_start = clean_start
        self.connect_properties = connect_properties
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._misc: asyncio.Task[None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False
        self._dropped = asyncio.Event()  # the socket closed: reconnect now, not on the next check
        self.last_error = ""
        client.corked = bytearray()
        self._write_scheduled = False
        self._awaiting_writable: SocketLike | None = None  # the kernel's buffer was full
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    async def connect(self) -> None:
        """Connect once (raises OSError when the broker cannot be reached)."""
        v5 = self.client.protocol == MQTTProtocolVersion.MQTTv5
        kwargs: dict[str, Any] = {"keepalive": KEEPALIVE_S}
        if v5:
            kwargs |= {"clean_start": self.clean_start, "properties": self.connect_properties}
        await asyncio.to_thread(self.client.connect, self.broker.host, self.broker.port, **kwargs)

    def keep_connected(self) -> None:
        """Reconnect in the background whenever the connection drops (until `close`)."""
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = self.loop.create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        # The backoff resets only once the broker accepted us (CONNACK): a broker that takes
        # the TCP connection and refuses the login is retried ever more slowly, not spammed.
        delay = RECONNECT_MIN_S
        while not self._closing:
            if self.client.is_connected():
                delay = RECONNECT_MIN_S
                self._dropped.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dropped.wait(), MISC_INTERVAL_S)
                continue
            if self.client.socket() is None:
                try:
                    await asyncio.to_thread(self.client.reconnect)
                except (OSError, ssl.SSLError, ValueError) as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("MQTT broker %s: %s; retrying", self.broker.url(), self.last_error)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def close(self) -> None:
        """Disconnect cleanly (a persistent session stays at the broker) and stop."""
        self._closing = True
        for task in (self._reconnect, self._misc):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.client.socket() is not None:
            self.client.disconnect()
            self._flush_now()

    def flush(self) -> None:
        """Write what is queued now rather than on the loop's next turn."""
        self._write_turn()

    def _flush_now(self) -> None:
        # The DISCONNECT packet is queued; write it before the socket goes.
        with contextlib.suppress(Exception):
            self._write_turn()

    def _schedule_write(self) -> None:
        if not self._write_scheduled:
            self._write_scheduled = True
            self.loop.call_soon(self._write_turn)

    def _write_turn(self) -> None:
        """paho's queued packets into the cork, then the cork onto the socket in one send."""
        self._write_scheduled = False
        if self.client.want_write():
            self.client.loop_write()
        self._send_corked()

    def _send_corked(self) -> None:
        corked, sock = self.client.corked, self._socket()
        if not corked or sock is None:
            return
        try:
            sent = sock.send(corked)
        except _TRY_LATER:
            sent = 0
        except OSError as exc:  # the connection is gone: let paho's read side find out
            corked.clear()
            log.debug("MQTT send to %s failed: %s", self.broker.url(), exc)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return
        del corked[:sent]
        if corked and self._awaiting_writable is None:
            self._awaiting_writable = sock
            self.loop.add_writer(sock, self._send_corked)
        elif not corked and self._awaiting_writable is not None:
            self._stop_awaiting_writable()

    def _socket(self) -> SocketLike:
        return self.client.socket()  # typed by paho as a protocol without shutdown()

    def _stop_awaiting_writable(self) -> None:
        if self._awaiting_writable is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_writer(self._awaiting_writable)
            self._awaiting_writable = None

    # --- paho's socket callbacks, always applied on the loop ---------------------------------

    def _on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: paho.Client, _userdata: Any, sock: SocketLike) -> None:
        # Requests and answers are small packets: Nagle's algorithm would hold one back
        # behind the ACK of the previous one (paho leaves it on).
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def opened() -> None:
            self.loop.add_reader(sock, self._read)
            if self._misc is None or self._misc.done():
                self._misc = self.loop.create_task(self._misc_loop())

        self._on_loop(opened)

    def _on_socket_close(self, client: paho.Client, _userdata: Any, sock: SocketLike) -> None:
        def closed() -> None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(sock)
            self._stop_awaiting_writable()
            if self.client.corked is not None:
                self.client.corked.clear()  # bytes for the connection that is gone
            self.client.drop_buffered()
            self._dropped.set()

        self._on_loop(closed)

    def _on_register_write(self, client: paho.Client, _userdata: Any, sock: SocketLike) -> None:
        # paho queued a packet: it goes out with the rest of this turn's (see the docstring).
        self._on_loop(self._schedule_write)

    def _on_unregister_write(self, client: paho.Client, _userdata: Any, sock: SocketLike) -> None:
        pass  # the driver tracks the socket's writability itself (`_send_corked`)

    def _read(self) -> None:
        # paho reads a few packets a call; what is buffered beyond them is read now, as the
        # socket will not say readable for bytes already taken from it.
        client = self.client
        client.loop_read()
        while client.buffered and client.socket() is not None:
            client.loop_read()

    async def _misc_loop(self) -> None:
        # Keep-alive pings and retries; loop_misc also notices a broker that stopped answering
        # them and closes the socket, which the reconnect loop then replaces.
        while not self._closing:
            self.client.loop_misc()
            await asyncio.sleep(MISC_INTERVAL_S)
