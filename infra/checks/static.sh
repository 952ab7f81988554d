#!/usr/bin/env bash
# Static checks of the AWS definition: the SAM template, the OpenAPI document and the state
# machines. Installs its own tools on first run, at pinned versions, and reuses them after:
#   - a Python venv (default <repo>/.venv-infra) with cfn-lint, the SAM CLI (which pins its own
#     boto3, hence a venv of its own) and openapi-spec-validator;
#   - asl-validator from npm into infra/asl/node_modules (`npm ci` from the committed lock file).
# Each install is skipped when its stamp file matches. Then it runs, offline (fake credentials,
# no telemetry):
#   cfn-lint infra/template.yaml
#   sam validate --lint -t infra/template.yaml, and sam validate (the SAM translator itself)
#   openapi-spec-validator infra/openapi.yaml
#   asl-validator --json-path statemachines/<each>.asl.json
#   a cross-check: every function binary (functions/src/bin/api_*, stage_*, schedule_*) has one function in
#   the template; the routes of shared/src/api/mod.rs are the operations of the OpenAPI
#   document, each integrated with its own function, which API Gateway may invoke; the problem
#   codes and export statuses of the document are those of the code, and every example
#   validates against its schema (a problem example has its code's type, title and status);
#   every `${...}` of a state machine has a DefinitionSubstitution, every stage function it
#   names has a LambdaInvokePolicy, and no stage function gets the state machine's ARN.
# Prints one line per check; on a failure prints the tool's output and, after running every
# check, exits non-zero. Warm (tools installed) it takes about 7 s.
#
#   EGRESS_INFRA_VENV  where the venv lives (default: <repo>/.venv-infra)
#   EGRESS_PYTHON      the interpreter to build it from (default: python3; needs 3.11 or newer)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
venv="${EGRESS_INFRA_VENV:-$repo/.venv-infra}"
python="${EGRESS_PYTHON:-python3}"
asl_dir="$repo/infra/asl"

# Bump these together; the stamp holds this exact string.
requirements="cfn-lint==1.58.0 aws-sam-cli==1.170.0 openapi-spec-validator==0.9.0"
stamp="$venv/.egress-stamp"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# --- Python tools ---------------------------------------------------------------------------
# A venv whose interpreter is gone (the base Python moved) is rebuilt from scratch.
if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$venv"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$requirements" ]]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "static.sh: $python is missing or older than 3.11" >&2
        exit 1
    fi
    if [[ ! -x "$venv/bin/python" ]] && ! "$python" -m venv "$venv" >"$log" 2>&1; then
        cat "$log" >&2
        echo "static.sh: could not create the venv at $venv" >&2
        exit 1
    fi
    rm -f "$stamp"
    start=$SECONDS
    # shellcheck disable=SC2086 # the requirements are words on purpose
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input $requirements >"$log" 2>&1 \
        || ! "$venv/bin/python" -c 'import cfnlint, samcli, openapi_spec_validator' >>"$log" 2>&1; then
        cat "$log" >&2
        echo "static.sh: pip install failed in $venv" >&2
        exit 1
    fi
    printf '%s' "$requirements" >"$stamp"
    echo "infra venv installed in $((SECONDS - start)) s: $venv"
fi

# --- asl-validator ----------------------------------------------------------------------------
# The lock file pins the whole tree; the stamp is its hash, so a changed lock reinstalls.
asl_bin="$asl_dir/node_modules/.bin/asl-validator"
asl_stamp="$asl_dir/node_modules/.egress-stamp"
lock_hash="$(sha256sum "$asl_dir/package.json" "$asl_dir/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$asl_bin" || ! -f "$asl_stamp" || "$(cat "$asl_stamp")" != "$lock_hash" ]]; then
    if ! command -v npm >/dev/null; then
        echo "static.sh: npm is missing (asl-validator needs Node.js and npm)" >&2
        exit 1
    fi
    start=$SECONDS
    if [[ -f "$asl_dir/package-lock.json" ]]; then
        npm_cmd=(npm ci --prefix "$asl_dir")
    else
        npm_cmd=(npm install --prefix "$asl_dir")
    fi
    if ! "${npm_cmd[@]}" --no-audit --no-fund --loglevel=error >"$log" 2>&1 || [[ ! -x "$asl_bin" ]]; then
        cat "$log" >&2
        echo "static.sh: ${npm_cmd[*]} failed" >&2
        exit 1
    fi
    lock_hash="$(sha256sum "$asl_dir/package.json" "$asl_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
    printf '%s' "$lock_hash" >"$asl_stamp"
    echo "asl-validator installed in $((SECONDS - start)) s: $asl_dir/node_modules"
fi

# --- the checks -------------------------------------------------------------------------------
failed=0
# check NAME COMMAND...: one line per check; the command's output only when it fails.
check() {
    local name="$1"
    shift
    local t0=$SECONDS
    if "$@" >"$log" 2>&1; then
        printf 'ok    %-58s %3d s\n' "$name" $((SECONDS - t0))
    else
        printf 'FAIL  %-58s %3d s\n' "$name" $((SECONDS - t0))
        # Some tools print whole schemas with an error: the head of it is what matters.
        head -n 60 "$log" | cut -c1-400 | sed 's/^/      /'
        local lines
        lines=$(wc -l <"$log")
        if ((lines > 60)); then
            echo "      ... $((lines - 60)) more lines; run: $*"
        fi
        failed=1
    fi
}

# No real account is needed or wanted: fake credentials, no shared config, no telemetry.
offline=(env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    AWS_SESSION_TOKEN=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null
    AWS_SHARED_CREDENTIALS_FILE=/dev/null SAM_CLI_TELEMETRY=0)

# The cross-check (the last item above), run by the venv's Python: it has cfn-lint's YAML loader (for
# !Ref and friends) and openapi-schema-validator (examples against their schemas).
consistency=$(cat <<'PY'
import json, re, sys
from pathlib import Path

import yaml
from cfnlint.decode import decode
from openapi_schema_validator import OAS30Validator, oas30_format_checker

repo = Path(sys.argv[1])
errors = []
def fail(msg):
    errors.append(msg)

tpl, matches = decode(str(repo / "infra/template.yaml"))
if tpl is None:
    print("infra/template.yaml does not parse:", *matches, sep="\n  ")
    sys.exit(1)
res = tpl.get("Resources", {})
api_doc = yaml.safe_load((repo / "infra/openapi.yaml").read_text())

# 1. every function binary has one function in the template, and every function one binary
fns = {k: v for k, v in res.items() if v.get("Type") == "AWS::Serverless::Function"}
binary_of = {}
for k, v in fns.items():
    md = v.get("Metadata") or {}
    b = (md.get("BuildProperties") or {}).get("Binary")
    if md.get("BuildMethod") != "rust-cargolambda" or not b:
        fail(f"template: {k} has no Metadata BuildMethod rust-cargolambda with BuildProperties.Binary")
    binary_of[k] = b
bins = {p.stem for p in (repo / "functions/src/bin").glob("*.rs") if p.stem.startswith(("api_", "stage_", "schedule_"))}
named = sorted(binary_of.values(), key=str)
for b in sorted(bins - set(named)):
    fail(f"functions/src/bin/{b}.rs has no function in infra/template.yaml")
for b in sorted(set(named) - bins):
    fail(f"template: binary {b} is not in functions/src/bin/")
for b in sorted({b for b in named if named.count(b) > 1}):
    fail(f"template: binary {b} is built by more than one function")
for k, b in binary_of.items():
    env = ((fns[k].get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
    if str(b).startswith("stage_") and "EGRESS_STATE_MACHINE_ARN" in env:
        fail(f"template: stage function {k} gets EGRESS_STATE_MACHINE_ARN (the state machine needs the stage functions' ARNs: a cycle)")

# 2. the routes of shared/src/api/mod.rs are the operations of the OpenAPI document, each
#    integrated with the function of its binary, and API Gateway may invoke that function
mod_rs = (repo / "shared/src/api/mod.rs").read_text()
names = dict(re.findall(r'Route::(\w+) => "(\w+)"', mod_rs))
routes = {(m.lower(), p): names.get(r) for r, m, p in re.findall(r'Route::(\w+) => \(Method::(\w+), "([^"]+)"\)', mod_rs)}
if not routes:
    fail("shared/src/api/mod.rs: no routes found (Route::X => (Method::M, \"/path\"))")
ops = {}
for path, item in (api_doc.get("paths") or {}).items():
    for method, op in item.items():
        if method in ("get", "put", "post", "delete", "patch", "head", "options"):
            ops[(method, path)] = op
for key in sorted(set(routes) - set(ops)):
    fail(f"openapi: route {key[0].upper()} {key[1]} of shared/src/api/mod.rs is missing")
for key in sorted(set(ops) - set(routes)):
    fail(f"openapi: {key[0].upper()} {key[1]} is not a route of shared/src/api/mod.rs")
perms = [v.get("Properties", {}) for v in res.values() if v.get("Type") == "AWS::Lambda::Permission"]
def ref_name(x):
    if isinstance(x, dict):
        if "Ref" in x:
            return x["Ref"]
        if "Fn::GetAtt" in x:
            g = x["Fn::GetAtt"]
            return (g.split(".") if isinstance(g, str) else g)[0]
    return None
def sub_text(x):
    if isinstance(x, dict) and "Fn::Sub" in x:
        s = x["Fn::Sub"]
        return s if isinstance(s, str) else s[0]
    return x if isinstance(x, str) else ""
for (method, path), op in sorted(ops.items()):
    integ = op.get("x-amazon-apigateway-integration") or {}
    where = f"openapi: {method.upper()} {path}"
    if str(integ.get("type", "")).lower() != "aws_proxy" or integ.get("httpMethod") != "POST":
        fail(f"{where}: integration must be aws_proxy with httpMethod POST")
    m = re.search(r"/functions/\$\{(\w+)\.Arn\}/invocations$", sub_text(integ.get("uri")))
    if not m:
        fail(f"{where}: integration uri is not Fn::Sub .../functions/${{<Function>.Arn}}/invocations")
        continue
    fn = m.group(1)
    if fn not in fns:
        fail(f"{where}: integration names {fn}, not a function of the template")
        continue
    want = routes.get((method, path))
    if want and binary_of.get(fn) != f"api_{want}":
        fail(f"{where}: integrated with {fn} (binary {binary_of.get(fn)}), expected binary api_{want}")
    arn_tail = "/" + method.upper() + re.sub(r"\{[^}]+\}", "*", path)
    if not any(ref_name(p.get("FunctionName")) == fn and sub_text(p.get("SourceArn")).endswith(arn_tail) for p in perms):
        fail(f"{where}: no AWS::Lambda::Permission lets API Gateway invoke {fn} on .../*{arn_tail}")
    if not op.get("operationId"):
        fail(f"{where}: no operationId")

# 3. problem codes and export statuses of the document are the code's
problem_rs = (repo / "shared/src/api/problem.rs").read_text()
as_str = problem_rs[problem_rs.index("fn as_str"):problem_rs.index("fn status")]
codes = dict(re.findall(r'Code::(\w+) => "([A-Z_]+)"', as_str))
title_fn = problem_rs[problem_rs.index("fn title"):]
titles = {codes[k]: t for k, t in re.findall(r'Code::(\w+) => "([^"]*)"', title_fn[: title_fn.index("\n    }\n")]) if k in codes}
status_fn = problem_rs[problem_rs.index("fn status"):problem_rs.index("fn title")]
http = {"BAD_REQUEST": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405,
        "CONFLICT": 409, "GONE": 410, "PAYLOAD_TOO_LARGE": 413, "UNSUPPORTED_MEDIA_TYPE": 415,
        "UNPROCESSABLE_ENTITY": 422, "TOO_MANY_REQUESTS": 429, "INTERNAL_SERVER_ERROR": 500, "SERVICE_UNAVAILABLE": 503}
status_of = {}
for lhs, st in re.findall(r"((?:Code::\w+\s*\|?\s*)+)=> StatusCode::(\w+)", status_fn):
    for k in re.findall(r"Code::(\w+)", lhs):
        if k in codes and st in http:
            status_of[codes[k]] = http[st]
schemas = (api_doc.get("components") or {}).get("schemas") or {}
doc_codes = set((schemas.get("ProblemCode") or {}).get("enum") or [])
if doc_codes != set(codes.values()):
    fail(f"openapi: ProblemCode enum differs from problem.rs: missing {sorted(set(codes.values()) - doc_codes)}, extra {sorted(doc_codes - set(codes.values()))}")
m = re.search(r'EXPORT_STATUSES: &str = "([^"]+)"', (repo / "shared/src/model/export.rs").read_text())
if m and set((schemas.get("ExportStatus") or {}).get("enum") or []) != {s.strip() for s in m.group(1).split(",")}:
    fail("openapi: ExportStatus enum differs from EXPORT_STATUSES of shared/src/model/export.rs")

# 4. every example validates against its schema; a problem example has its code's type, title
#    and status; the gateway responses are problem documents once API Gateway fills them in
def check_value(value, schema, where):
    wrapped = {"allOf": [schema], "components": api_doc.get("components", {})}
    v = OAS30Validator(wrapped, format_checker=oas30_format_checker)
    for e in v.iter_errors(value):
        fail(f"{where}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
    if isinstance(value, dict) and "code" in value and "request_id" in value:
        c = value["code"]
        if value.get("type") != f"urn:egress:problem:{str(c).lower()}":
            fail(f"{where}: type is not urn:egress:problem:{str(c).lower()}")
        if c in titles and value.get("title") != titles[c]:
            fail(f"{where}: title of {c} is {titles[c]!r} in problem.rs")
        if c in status_of and value.get("status") != status_of[c]:
            fail(f"{where}: status of {c} is {status_of[c]} in problem.rs")
def resolve(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = api_doc
        for part in obj["$ref"][2:].split("/"):
            node = node[part]
        obj = node
    return obj
def walk_media(content, where):
    for mt, media in (content or {}).items():
        if "schema" not in media:
            continue
        if "example" in media:
            check_value(media["example"], media["schema"], f"{where} {mt} example")
        for name, ex in (media.get("examples") or {}).items():
            check_value(resolve(ex).get("value"), media["schema"], f"{where} {mt} example {name}")
for (method, path), op in ops.items():
    body = resolve(op.get("requestBody") or {})
    walk_media(body.get("content"), f"openapi: {method.upper()} {path} request")
    for status, r in (op.get("responses") or {}).items():
        walk_media(resolve(r).get("content"), f"openapi: {method.upper()} {path} {status}")
problem_schema = {"$ref": "#/components/schemas/Problem"}
for kind, gr in (api_doc.get("x-amazon-apigateway-gateway-responses") or {}).items():
    tmpl = (gr.get("responseTemplates") or {}).get("application/json")
    where = f"openapi: gateway response {kind}"
    if not tmpl:
        fail(f"{where}: no application/json template")
        continue
    filled = tmpl.replace("$context.error.messageString", json.dumps("a message")).replace("$context.path", "/prod/v1/x").replace("$context.requestId", "r-1")
    try:
        value = json.loads(filled)
    except ValueError as e:
        fail(f"{where}: the template is not JSON once filled in: {e}")
        continue
    check_value(value, problem_schema, where)
    if gr.get("statusCode") is not None and str(value.get("status")) != str(gr["statusCode"]):
        fail(f"{where}: statusCode {gr['statusCode']} but the body says {value.get('status')}")

# 5. every ${...} of a state machine definition is substituted, every *FunctionArn by a stage
#    function the state machine may invoke
machines = {}
for k, v in res.items():
    if v.get("Type") == "AWS::Serverless::StateMachine":
        uri = (v.get("Properties") or {}).get("DefinitionUri")
        if isinstance(uri, str):
            machines[(repo / "infra" / uri).resolve()] = (k, v.get("Properties") or {})
for asl in sorted((repo / "statemachines").glob("*.asl.json")):
    rel = asl.relative_to(repo)
    if asl.resolve() not in machines:
        fail(f"{rel}: no AWS::Serverless::StateMachine has DefinitionUri ../{rel}")
        continue
    k, props = machines[asl.resolve()]
    used = set(re.findall(r"\$\{(\w+)\}", asl.read_text()))
    subs = props.get("DefinitionSubstitutions") or {}
    for name in sorted(used - set(subs)):
        fail(f"{rel}: ${{{name}}} has no DefinitionSubstitutions entry in {k}")
    for name in sorted(set(subs) - used):
        fail(f"template: {k} substitutes {name}, which {rel} does not use")
    invokable = {ref_name(p["LambdaInvokePolicy"].get("FunctionName")) for p in props.get("Policies") or [] if isinstance(p, dict) and "LambdaInvokePolicy" in p}
    for name, value in subs.items():
        if name.endswith("FunctionArn"):
            fn = ref_name(value)
            if fn not in fns or not str(binary_of.get(fn)).startswith("stage_"):
                fail(f"template: {k} substitutes {name} with {fn}, not a stage function")
            elif fn not in invokable:
                fail(f"template: {k} has no LambdaInvokePolicy for {fn}")

if errors:
    print(*dict.fromkeys(errors), sep="\n")
    sys.exit(1)
print(f"{len(bins)} functions, {len(ops)} routes, {len(machines)} state machine(s) agree")
PY
)

t_all=$SECONDS
check "cfn-lint infra/template.yaml" "${offline[@]}" "$venv/bin/cfn-lint" infra/template.yaml
check "sam validate --lint -t infra/template.yaml" "${offline[@]}" "$venv/bin/sam" validate --lint -t infra/template.yaml
check "sam validate -t infra/template.yaml (SAM translator)" "${offline[@]}" "$venv/bin/sam" validate -t infra/template.yaml
check "openapi-spec-validator infra/openapi.yaml" "$venv/bin/openapi-spec-validator" --schema 3.0 infra/openapi.yaml
for f in statemachines/*.asl.json; do
    check "asl-validator $f" "$asl_bin" --json-path "$f"
done
check "template, openapi, state machines and code agree" "$venv/bin/python" -c "$consistency" "$repo"

if ((failed)); then
    echo "static checks FAILED ($((SECONDS - t_all)) s)"
    exit 1
fi
echo "static checks ok ($((SECONDS - t_all)) s)"
