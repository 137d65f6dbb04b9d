"""Decodes ExportLogsServiceRequest files with the opentelemetry-proto package
and prints one canonical line per resource and per log record.

Strings and bytes print as hex of their bytes and doubles as the hex of their
IEEE-754 bits, so the Rust side can render the same text without any escaping
rules in common. Used by tests/tests/python_opentelemetry_proto_decodes_our_bytes.rs.
"""

import struct
import sys

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return "none"
    if kind == "string_value":
        return "s:" + v.string_value.encode("utf-8").hex()
    if kind == "bool_value":
        return "b:" + ("1" if v.bool_value else "0")
    if kind == "int_value":
        return "i:" + str(v.int_value)
    if kind == "double_value":
        return "d:" + struct.pack("<d", v.double_value).hex()
    if kind == "bytes_value":
        return "x:" + v.bytes_value.hex()
    if kind == "array_value":
        return "[" + ",".join(value(x) for x in v.array_value.values) + "]"
    if kind == "kvlist_value":
        return "{" + ",".join(kv(x) for x in v.kvlist_value.values) + "}"
    raise SystemExit("unexpected AnyValue kind " + kind)


def kv(x):
    return x.key.encode("utf-8").hex() + "=" + value(x.value)


def request_lines(request):
    """One canonical line per resource and per log record of `request`."""
    lines = []
    for rl in request.resource_logs:
        lines.append("resource|" + ";".join(kv(a) for a in rl.resource.attributes))
        for sl in rl.scope_logs:
            for r in sl.log_records:
                lines.append(
                    "|".join(
                        [
                            sl.scope.name.encode("utf-8").hex(),
                            str(r.time_unix_nano),
                            str(r.observed_time_unix_nano),
                            str(r.severity_number),
                            r.severity_text,
                            r.event_name.encode("utf-8").hex(),
                            value(r.body) if r.HasField("body") else "-",
                            ";".join(kv(a) for a in r.attributes),
                            str(r.dropped_attributes_count),
                            r.trace_id.hex(),
                            r.span_id.hex(),
                            str(r.flags),
                        ]
                    )
                )
    return lines


def main(message=ExportLogsServiceRequest, lines=request_lines):
    """Prints the lines of each file of the command line, a `message`."""
    for path in sys.argv[1:]:
        request = message()
        with open(path, "rb") as f:
            request.ParseFromString(f.read())
        for line in lines(request):
            print(line)


if __name__ == "__main__":
    main()
