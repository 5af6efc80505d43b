"""Run a trainer script with HTTP/2 BDP probing off on its gRPC channels (diagnostic).

``python bench/learning/lowlag.py examples/python/train_lm.py ARGS...``

With BDP probing the client's flow-control window grows to megabytes, and the server's
batch stream runs that far ahead of training (~80 small text batches in the learning
bench), so a new version takes effect ~80 steps after the signals that produced it. With
it off the window stays at the HTTP/2 default, and the run-ahead stays near the stream's
``prefetch``. Used by ``run.py --low-lag`` to measure what the lag costs adaptive strategies.
"""

import runpy
import sys

import grpc

_insecure = grpc.insecure_channel


def _channel(target, options=None, compression=None):  # type: ignore[no-untyped-def]
    return _insecure(target, [*(options or []), ("grpc.http2.bdp_probe", 0)], compression)


grpc.insecure_channel = _channel
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
