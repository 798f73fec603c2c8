"""A site's long-lived ClientApp process: Flower's `process` isolation, without a process per task.

With default settings a SuperNode starts a fresh `flwr-clientapp` process for every
message (import Flower and numpy, install the app bundle, load the data, run, exit) -
seconds of overhead per site per round. A SuperNode started with `--isolation process`
instead waits for an external executor to claim its tasks over its Runtime API. This
worker is that executor, kept alive for the whole run: it claims each task with the
SuperNode's task token, pulls the message and context, runs the ClientApp in-process
(loaded once per app bundle, data cached), and pushes the reply and context back - the
same Runtime API calls `flwr-clientapp` makes, minus the process start.

Run it as `python -m tierwise.federate.site_worker --runtime-api-address 127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
from typing import Any

from flwr.app import Context, Message
from flwr.app.error import Error
from flwr.cli.install import install_from_fab
from flwr.clientapp import ClientApp
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.constant import ErrorCode, SubStatus
from flwr.common.serde import context_from_proto, fab_from_proto, run_from_proto
from flwr.proto.node_pb2 import Node  # pylint: disable=E0611
from flwr.proto.runtime_pb2 import (  # pylint: disable=E0611
    AcquireTaskRequest,
    PullAppMessagesRequest,
    PullTaskInputRequest,
    SendTaskHeartbeatRequest,
)
from flwr.supercore.constant import TaskType
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
from flwr.supercore.interceptors import (
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
)
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.task_identity import TaskIdentity
from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

from tierwise.federate.polling import FAST_BACKOFF_CAP, FAST_INITIAL_BACKOFF, Pacer

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0


class SiteWorker:
    """Claims and runs a SuperNode's ClientApp tasks until stopped."""

    def __init__(self, runtime_api_address: str) -> None:
        self.address = runtime_api_address
        self.apps: dict[str, ClientApp] = {}
        self.stop = threading.Event()
        self.tasks_done = 0

    def _client(self, component: str, token: str | None = None) -> RuntimeHttpClient:
        interceptors: list[Any] = [RuntimeVersionHttpInterceptor(component_name=component)]
        if token is not None:
            interceptors.append(RuntimeTokenHttpInterceptor(token))
        return RuntimeHttpClient.from_server_address(
            server_address=self.address,
            insecure=True,
            root_certificates=None,
            interceptors=interceptors,
            retry_invoker=make_simple_http_retry_invoker(),
        )

    def serve(self) -> None:
        """Poll for tasks (fast after work, slower when idle) and run each one."""
        control = self._client("SuperExec")
        pacer = Pacer()
        try:
            while not self.stop.is_set():
                res = control.AcquireTask(
                    AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
                )
                if res.HasField("task") and res.token:
                    pacer.work(time.monotonic())
                    self.run_task(res.token)
                    pacer.idle(time.monotonic())
                else:
                    self.stop.wait(pacer.next_delay(time.monotonic()))
        finally:
            control.close()

    def run_task(self, token: str) -> None:
        """One ClientApp execution, exactly as `flwr-clientapp` would do it, in-process."""
        client = self._client("flwr-clientapp", token)
        beating = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(client, beating), daemon=True)
        beat.start()
        context: Context | None = None
        status, details = SubStatus.FAILED, "ClientApp failed"
        try:
            message, context, app = self._pull(client)
            try:
                reply = app(message=message, context=context)
                status, details = SubStatus.COMPLETED, ""
            except Exception as exc:  # the ClientApp's own failure becomes an error reply
                log.exception("ClientApp raised")
                reason = f"{type(exc).__name__}: {exc}"
                reply = Message(
                    Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason),
                    reply_to=message,
                )
                details = reason
            push_message(client, reply, context)
        finally:
            beating.set()
            push_task_output(client=client, context=context, sub_status=status, details=details)
            client.close()
            self.tasks_done += 1

    def _pull(self, client: RuntimeHttpClient) -> tuple[Message, Context, ClientApp]:
        res = client.PullTaskInput(PullTaskInputRequest())
        # who this process is working for, as flwr-clientapp records it for new messages
        TaskIdentity.task_id = res.task_id
        TaskIdentity.run_id = res.run.run_id
        TaskIdentity.node_id = res.context.node_id
        context = context_from_proto(res.context)
        run = run_from_proto(res.run)
        fab = fab_from_proto(res.fab)
        if fab.hash_str not in self.apps:
            install_from_fab(fab.content, skip_prompt=True)
            load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
            self.apps[fab.hash_str] = load(run.fab_id, run.fab_version, fab.hash_str)
        pulled = client.PullMessages(PullAppMessagesRequest())
        if not pulled.messages_list:
            raise RuntimeError("the SuperNode offered a task without a message")
        tree = pulled.message_object_trees[0]
        node = Node(node_id=context.node_id)
        message = pull_and_inflate_object_from_tree(
            tree,
            make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
            make_confirm_message_received_fn_protobuf(
                client.ConfirmMessageReceived, node, context.run_id
            ),
            return_type=Message,
            initial_backoff=FAST_INITIAL_BACKOFF,
            backoff_cap=FAST_BACKOFF_CAP,
        )
        message.metadata.__dict__["_message_id"] = tree.object_id  # as flwr-clientapp does
        return message, context, self.apps[fab.hash_str]


def _heartbeat(client: RuntimeHttpClient, done: threading.Event) -> None:
    """Tell the SuperNode the task is alive, so long local training is not declared dead."""
    while not done.wait(HEARTBEAT_SECONDS):
        try:
            client.SendTaskHeartbeat(SendTaskHeartbeatRequest())
        except Exception:  # a missed beat is retried on the next tick
            log.debug("task heartbeat failed", exc_info=True)


def wait_until_listening(address: str, interval: float = 0.05) -> None:
    """Return once `host:port` accepts connections.

    The worker starts beside its SuperNode, which opens the port a second or more later.
    Calling it before then would leave the wait to Flower's HTTP retry: exponential backoff
    with full jitter up to 20 s, a random delay every site's first round then waits for.
    """
    host, _, port = address.rpartition(":")
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(interval)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A site's long-lived Flower ClientApp process")
    parser.add_argument("--runtime-api-address", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("flwr").setLevel(logging.WARNING)
    worker = SiteWorker(args.runtime_api_address)
    while True:
        wait_until_listening(args.runtime_api_address)
        try:
            worker.serve()
            return
        except Exception:  # the SuperNode restarted or is not up yet: keep trying
            log.warning("runtime API at %s unavailable; retrying", args.runtime_api_address)
            time.sleep(0.5)


if __name__ == "__main__":
    main()
