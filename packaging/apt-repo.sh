#!/usr/bin/env bash
# The cooperative's signed apt repository for the gateway (reprepro), docs/gateway-fleet.md.
#
#   packaging/apt-repo.sh init REPO KEY_ID      conf/ for suites canary and stable, the key
#   packaging/apt-repo.sh publish REPO SUITE DEB  add a package to a suite (signed again)
#   packaging/apt-repo.sh promote REPO          copy zonnewijk-gateway from canary to stable
#   packaging/apt-repo.sh newkey GNUPGHOME      a signing key without passphrase (tests, and
#                                               the first key of a repository; print its id)
#
# Layout (served as static files, e.g. https://apt.zonnewijk.example/):
#   REPO/dists/{canary,stable}/InRelease, Release(.gpg)   signed with KEY_ID
#   REPO/pool/main/z/zonnewijk-gateway/*.deb
#   REPO/zonnewijk-archive-keyring.gpg                   the public key for signed-by=
# conf/ and db/ are reprepro's own and need not be served.
set -euo pipefail
cmd=${1:?usage: apt-repo.sh init|publish|promote|newkey ...}
shift
case "$cmd" in
newkey)
    export GNUPGHOME=${1:?GNUPGHOME}
    install -d -m 0700 "$GNUPGHOME"
    gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key \
        "Zonnewijk gateway archive <apt@zonnewijk.invalid>" ed25519 sign 3y 2>/dev/null
    gpg --batch --list-keys --with-colons | awk -F: '/^fpr/ {print $10; exit}'
    ;;
init)
    repo=${1:?REPO}; key=${2:?KEY_ID}
    install -d "$repo/conf"
    : > "$repo/conf/distributions"
    for suite in canary stable; do
        cat >> "$repo/conf/distributions" <<EOF
Origin: Zonnewijk
Label: Zonnewijk gateway
Codename: $suite
Suite: $suite
Architectures: amd64 arm64 armhf
Components: main
Description: Zonnewijk gateway, $suite channel
SignWith: $key

EOF
    done
    echo "verbose" > "$repo/conf/options"
    gpg --batch --export "$key" > "$repo/zonnewijk-archive-keyring.gpg"
    reprepro -b "$repo" export >/dev/null
    ;;
publish)
    repo=${1:?REPO}; suite=${2:?SUITE}; deb=${3:?DEB}
    reprepro -b "$repo" includedeb "$suite" "$deb"
    ;;
promote)
    repo=${1:?REPO}
    reprepro -b "$repo" copy stable canary zonnewijk-gateway
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
