#!/usr/bin/env bash
# Regenerates the Go code for proto/gpunet/** offline: protoc (Debian's
# protobuf-compiler), gogoproto's protoc-gen-gocosmos (types and gRPC),
# protoc-gen-grpc-gateway (REST) and protoc-gen-go (the protobuf-go types of
# api/, see api/doc.go), with every imported .proto taken from the Go module
# cache. `--check` regenerates into a scratch tree and fails if the
# committed code differs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

check=0
[ "${1:-}" = "--check" ] && check=1

command -v protoc >/dev/null || { echo "protoc not found: run scripts/setup.sh (installs protobuf-compiler)" >&2; exit 1; }

# 1. Plugins, built from the pinned tools module.
TOOLS=$ROOT/build/tools
mkdir -p "$TOOLS"
(cd tools && go build -o "$TOOLS/" github.com/cosmos/gogoproto/protoc-gen-gocosmos github.com/grpc-ecosystem/grpc-gateway/protoc-gen-grpc-gateway google.golang.org/protobuf/cmd/protoc-gen-go)
export PATH="$TOOLS:$PATH"

# 2. Imported protos, copied from the module cache into third_party/ (ignored by git).
go mod download github.com/cosmos/cosmos-sdk github.com/cosmos/gogoproto github.com/cosmos/cosmos-proto
moddir() { go list -m -f '{{.Dir}}' "$1"; }
SDK=$(moddir github.com/cosmos/cosmos-sdk)
GOGO=$(moddir github.com/cosmos/gogoproto)
CPROTO=$(moddir github.com/cosmos/cosmos-proto)
GW=$(cd tools && go list -m -f '{{.Dir}}' github.com/grpc-ecosystem/grpc-gateway)
TP=$ROOT/third_party/proto
rm -rf "$TP"
mkdir -p "$TP/gogoproto" "$TP/cosmos_proto" "$TP/google"
cp -r "$SDK/proto/cosmos" "$SDK/proto/amino" "$TP/"
cp "$GOGO/gogoproto/gogo.proto" "$TP/gogoproto/"
cp "$CPROTO/proto/cosmos_proto/cosmos.proto" "$TP/cosmos_proto/"
cp -r "$GW/third_party/googleapis/google/api" "$TP/google/"
chmod -R u+w "$TP"

# 3. Generate into a scratch tree laid out by Go import path.
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mapfile -t dirs < <(find proto -name '*.proto' -exec dirname {} \; | sort -u)
for d in "${dirs[@]}"; do
  files=("$d"/*.proto)
  protoc -I proto -I "$TP" \
    --gocosmos_out=plugins=grpc,Mgoogle/protobuf/any.proto=github.com/cosmos/gogoproto/types/any:"$OUT" \
    "${files[@]}"
  if grep -q '^service Query' "${files[@]}"; then
    protoc -I proto -I "$TP" \
      --grpc-gateway_out=logtostderr=true,allow_colon_final_segments=true:"$OUT" \
      "${files[@]}"
  fi
done

# 4. protobuf-go types of the same files under api/gpunet/<module>/v1 (the
# module configs under module/ are left out: no transaction carries them).
# Their imports resolve to the SDK's own protobuf-go packages.
gomap="Mamino/amino.proto=cosmossdk.io/api/amino"
gomap+=",Mcosmos/base/query/v1beta1/pagination.proto=cosmossdk.io/api/cosmos/base/query/v1beta1"
gomap+=",Mcosmos/base/v1beta1/coin.proto=cosmossdk.io/api/cosmos/base/v1beta1"
gomap+=",Mcosmos/msg/v1/msg.proto=cosmossdk.io/api/cosmos/msg/v1"
gomap+=",Mcosmos_proto/cosmos.proto=github.com/cosmos/cosmos-proto"
gomap+=",Mgogoproto/gogo.proto=github.com/cosmos/gogoproto/gogoproto"
gomap+=",Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations"
apifiles=()
for d in "${dirs[@]}"; do
  case $d in */module/*) continue ;; esac
  mod=$(basename "$(dirname "$d")")
  for f in "$d"/*.proto; do
    rel=${f#proto/}
    gomap+=",M$rel=github.com/gpunet/gpunet/api/${d#proto/};${mod}v1"
    apifiles+=("$f")
  done
done
protoc -I proto -I "$TP" --go_out="$gomap":"$OUT" "${apifiles[@]}"

GEN=$OUT/github.com/gpunet/gpunet
if [ $check = 1 ]; then
  status=0
  while IFS= read -r f; do
    rel=${f#"$GEN"/}
    if ! cmp -s "$f" "$rel"; then echo "stale generated file: $rel"; status=1; fi
  done < <(find "$GEN" -type f)
  while IFS= read -r f; do
    [ -f "$GEN/$f" ] || { echo "generated file without a proto: $f"; status=1; }
  done < <(git ls-files '*.pb.go' '*.pb.gw.go')
  if [ $status != 0 ]; then echo "run 'make proto-gen' and commit the result" >&2; exit 1; fi
  echo "generated code is up to date"
else
  cp -r "$GEN"/. "$ROOT"/
  echo "generated $(find "$GEN" -type f | wc -l) files"
fi
