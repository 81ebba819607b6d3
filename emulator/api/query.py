"""AWS's query protocol, for the few IAM actions smemu answers itself: request parameters to a dict by
botocore's input shape, a result dict to XML by its output shape (``awsQuery``: lists as ``member``
elements, maps as ``entry``/``key``/``value``)."""
from __future__ import annotations

from xml.sax.saxutils import escape


def parse(shape, params: dict[str, str], prefix: str = ""):
    """The value of ``shape`` from flattened query parameters (``A.member.1.B=…``), or None when absent."""
    kind = shape.type_name
    if kind == "structure":
        found = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = parse(member, params, f"{prefix}.{key}" if prefix else key)
            if value is not None:
                found[name] = value
        return found if found or not prefix else None
    if kind == "list":
        items, index = [], 1
        while any(key == f"{prefix}.member.{index}" or key.startswith(f"{prefix}.member.{index}.") for key in params):
            items.append(parse(shape.member, params, f"{prefix}.member.{index}"))
            index += 1
        return items if items or prefix in params else None
    if kind == "map":
        found, index = {}, 1
        while f"{prefix}.entry.{index}.key" in params:
            found[params[f"{prefix}.entry.{index}.key"]] = parse(shape.value, params, f"{prefix}.entry.{index}.value")
            index += 1
        return found or None
    if prefix not in params:
        return None
    text = params[prefix]
    if kind in ("integer", "long"):
        return int(text)
    if kind == "boolean":
        return text.lower() == "true"
    return text


def xml(shape, value) -> str:
    """The XML body of ``value`` (no enclosing element) as ``shape`` says it is serialized."""
    kind = shape.type_name
    if kind == "structure":
        return "".join(f"<{name}>{xml(member, value[name])}</{name}>"
                       for name, member in shape.members.items() if value.get(name) is not None)
    if kind == "list":
        return "".join(f"<member>{xml(shape.member, item)}</member>" for item in value)
    if kind == "map":
        return "".join(f"<entry><key>{escape(str(k))}</key><value>{xml(shape.value, v)}</value></entry>"
                       for k, v in value.items())
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))


def response(operation_model, result: dict, namespace: str, request_id: str) -> bytes:
    name = operation_model.name
    body = xml(operation_model.output_shape, result) if operation_model.output_shape is not None else ""
    return (f'<{name}Response xmlns="{namespace}"><{name}Result>{body}</{name}Result>'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{name}Response>").encode()
