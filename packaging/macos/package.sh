#!/usr/bin/env bash
# Signs TinyChat.app (when a signing identity is configured), wraps it in a .dmg with an Applications link,
# and notarises + staples the .dmg (when Apple credentials are configured). Without credentials each step
# says what it skipped, and the result is the ad-hoc-signed app PyInstaller made (runs after the user
# confirms it once in System Settings → Privacy & Security).
#
#   packaging/macos/package.sh dist/TinyChat.app 0.1.0 dist/TinyChat-0.1.0-arm64.dmg
#
# Environment: MACOS_SIGN_IDENTITY ("Developer ID Application: Name (TEAMID)", in the keychain), and for
# notarisation APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD (an app-specific password).
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 APP VERSION DMG" >&2
    exit 2
fi
APP=$1
VERSION=$2
DMG=$3
HERE=$(cd "$(dirname "$0")" && pwd)
IDENTITY=${MACOS_SIGN_IDENTITY:-}

sign() {
    codesign --force --timestamp --options runtime --entitlements "$HERE/entitlements.plist" \
        --sign "$IDENTITY" "$@"
}

if [[ -n "$IDENTITY" ]]; then
    # Inside out: every Mach-O file first (codesign --deep misses dylibs that are loaded by path, such as
    # libllama and libmlx), then the bundle, whose seal also covers data such as mlx.metallib.
    find "$APP/Contents" -type f -print0 | while IFS= read -r -d '' f; do
        if file -b "$f" | grep -q "Mach-O"; then sign "$f"; fi
    done
    sign "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
else
    echo "notice: MACOS_SIGN_IDENTITY is not set, so TinyChat.app keeps PyInstaller's ad-hoc signature."
fi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ditto "$APP" "$STAGE/$(basename "$APP")"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "TinyChat $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO \
    -imagekey zlib-level=9 "$DMG"

if [[ -n "$IDENTITY" ]]; then
    codesign --force --timestamp --sign "$IDENTITY" "$DMG"
fi

if [[ -n "$IDENTITY" && -n "${APPLE_ID:-}" && -n "${APPLE_TEAM_ID:-}" && -n "${APPLE_APP_PASSWORD:-}" ]]; then
    xcrun notarytool submit "$DMG" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" --wait
    xcrun stapler staple "$DMG"
    xcrun stapler validate "$DMG"
else
    echo "notice: notarisation skipped (it needs MACOS_SIGN_IDENTITY, APPLE_ID, APPLE_TEAM_ID and APPLE_APP_PASSWORD)."
fi
echo "$DMG"
