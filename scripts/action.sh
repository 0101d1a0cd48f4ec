#!/usr/bin/env bash
# The logic of the GitHub Action (action.yml): pick the release archive for the runner, install
# it, run dbdeploy with --json and turn its JSON document into step outputs. It lives here, not
# inline in action.yml, so that tests/it/action.rs can run it with GitHub's variables
# (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_OS, ...) pointed at temporary files.
#
#   scripts/action.sh target    print the Rust target triple for RUNNER_OS / RUNNER_ARCH
#   scripts/action.sh resolve   write version, target, archive, url and dir to GITHUB_OUTPUT
#   scripts/action.sh install   download the archive named by resolve, check its sha256, unpack
#                               the binary into DBDEPLOY_DIR and add that folder to GITHUB_PATH
#   scripts/action.sh run       run dbdeploy; write status, applied, pending, backup-id,
#                               exit-code and json to GITHUB_OUTPUT; exit with dbdeploy's code
#
# Inputs come as INPUT_* variables (action.yml sets them; composite actions do not):
# INPUT_ENVIRONMENT, INPUT_COMMAND, INPUT_ARGS, INPUT_VERSION, INPUT_WORKING_DIRECTORY.
# DBDEPLOY_BIN names a binary to run instead of the downloaded one (tests, self-built binaries).
# DBDEPLOY_RELEASES_URL replaces https://github.com/OWNER/REPO/releases (a mirror; tests use
# file://). The script is written for bash 3.2, the one macOS ships.
set -euo pipefail

die() {
	# One annotation on the run's summary page, and the exit code of a usage error.
	echo "::error title=dbdeploy action::$*" >&2
	exit 2
}

# Appends key=value to GITHUB_OUTPUT. Values are checked by the callers against a pattern, so
# none can hold a newline that would smuggle in another output.
output() {
	echo "$1=$2" >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
}

# The Rust target triple of the release archive that runs on this runner.
target() {
	case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
	Linux/X64) echo x86_64-unknown-linux-musl ;;
	Linux/ARM64) echo aarch64-unknown-linux-musl ;;
	macOS/X64) echo x86_64-apple-darwin ;;
	macOS/ARM64) echo aarch64-apple-darwin ;;
	*) die "no dbdeploy release for ${RUNNER_OS:-unknown OS}/${RUNNER_ARCH:-unknown architecture}: runners on Linux or macOS, x64 or ARM64, are supported (set DBDEPLOY_BIN to a binary you built)" ;;
	esac
}

releases_url() {
	if [ -n "${DBDEPLOY_RELEASES_URL:-}" ]; then
		echo "${DBDEPLOY_RELEASES_URL%/}"
		return
	fi
	# github.action_repository is empty when the action is used from its own repository (`./`).
	local repo=${DBDEPLOY_REPOSITORY:-${GITHUB_REPOSITORY:-}}
	[ -n "$repo" ] || die "cannot tell which repository publishes dbdeploy: set DBDEPLOY_REPOSITORY"
	echo "${GITHUB_SERVER_URL:-https://github.com}/$repo/releases"
}

# The release tag to install: the `version` input (0.3.1 or v0.3.1), else the tag the action
# itself was used at (`uses: OWNER/dbdeploy@v0.3.1`), else the latest release.
version() {
	local v=${INPUT_VERSION:-}
	if [ -z "$v" ]; then
		case "${DBDEPLOY_ACTION_REF:-}" in
		v[0-9]*.[0-9]*.[0-9]*) v=$DBDEPLOY_ACTION_REF ;;
		*) v=latest ;;
		esac
	fi
	if [ "$v" = latest ]; then
		# The latest release redirects to .../releases/tag/<tag>: no API call, no token, no rate limit.
		local url
		url=$(curl -fsSL --retry 3 -o /dev/null -w '%{url_effective}' "$(releases_url)/latest") ||
			die "could not find the latest dbdeploy release at $(releases_url)/latest"
		v=${url##*/}
	fi
	case "$v" in
	v*) ;;
	*) v="v$v" ;;
	esac
	echo "$v" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$' ||
		die "version \"$v\" is not a release version such as 0.3.1, v0.3.1 or latest"
	echo "$v"
}

resolve() {
	local version triple archive
	version=$(version)
	triple=$(target)
	archive="dbdeploy-$version-$triple.tar.gz"
	output version "$version"
	output target "$triple"
	output archive "$archive"
	output url "$(releases_url)/download/$version/$archive"
	# actions/cache saves and restores this folder, keyed by version and target.
	output dir "${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:?RUNNER_TEMP is not set}}/dbdeploy/$version/$triple"
}

sha256() {
	if command -v sha256sum >/dev/null; then
		sha256sum "$1" | awk '{print $1}'
	else
		shasum -a 256 "$1" | awk '{print $1}'
	fi
}

install() {
	local dir=${DBDEPLOY_DIR:?DBDEPLOY_DIR is not set (resolve writes it)}
	local url=${DBDEPLOY_URL:?DBDEPLOY_URL is not set (resolve writes it)}
	if [ -x "$dir/dbdeploy" ]; then
		echo "dbdeploy already installed in $dir (cached)"
	else
		local tmp archive expected actual
		tmp=$(mktemp -d "${RUNNER_TEMP:?RUNNER_TEMP is not set}/dbdeploy-download.XXXXXX")
		archive="$tmp/${url##*/}"
		echo "downloading $url"
		curl -fsSL --retry 3 -o "$archive" "$url" || die "could not download $url"
		curl -fsSL --retry 3 -o "$archive.sha256" "$url.sha256" || die "could not download $url.sha256"
		expected=$(awk '{print $1; exit}' "$archive.sha256")
		actual=$(sha256 "$archive")
		[ "$expected" = "$actual" ] ||
			die "sha256 of ${url##*/} is $actual, but its .sha256 file says $expected: not installed"
		tar -xzf "$archive" -C "$tmp"
		mkdir -p "$dir"
		# The archive holds one folder named after itself, with the binary and the licences.
		mv "$tmp/$(basename "$archive" .tar.gz)/dbdeploy" "$dir/dbdeploy"
		chmod 755 "$dir/dbdeploy"
		rm -rf "$tmp"
	fi
	echo "$dir" >>"${GITHUB_PATH:?GITHUB_PATH is not set}"
	"$dir/dbdeploy" --version
}

# Reads one value from the JSON document with jq; empty when the key is absent or null.
field() {
	jq -r "($1) // empty" "$2" 2>/dev/null || true
}

# Writes an output only when its value has the expected shape; anything else (including a
# value that should never be there) is dropped with a warning rather than passed on.
checked_output() {
	local name=$1 pattern=$2 value=$3
	if [ -z "$value" ] || echo "$value" | grep -Eq "^$pattern\$"; then
		output "$name" "$value"
	else
		echo "::warning title=dbdeploy action::output $name was not set: unexpected value" >&2
		output "$name" ""
	fi
}

run() {
	local environment=${INPUT_ENVIRONMENT:-}
	[ -n "$environment" ] || die "the environment input is required (the [environments.NAME] of dbdeploy.toml)"
	local command=${INPUT_COMMAND:-migrate}
	case "$command" in
	migrate | status | lint | rehearse | "migrate --dry-run") ;;
	*) die "command \"$command\" is not one of: migrate, status, lint, rehearse, migrate --dry-run" ;;
	esac
	command -v jq >/dev/null || die "jq is needed to read dbdeploy's JSON (GitHub's Ubuntu and macOS runners have it)"
	local bin=${DBDEPLOY_BIN:-dbdeploy}
	if [ -n "${INPUT_WORKING_DIRECTORY:-}" ] && [ ! -d "$INPUT_WORKING_DIRECTORY" ]; then
		die "working-directory \"$INPUT_WORKING_DIRECTORY\" is not a folder"
	fi

	# `dbdeploy --json migrate ENV --dry-run ARGS...`: the command's first word, the
	# environment, then its flags. args is split on whitespace (no quoting, no globbing).
	local words extra
	read -r -a words <<<"$command"
	read -r -a extra <<<"${INPUT_ARGS:-}"
	local cmd=("$bin" --json "${words[0]}" "$environment")
	cmd+=(${words[1]+"${words[@]:1}"})
	cmd+=(${extra[0]+"${extra[@]}"})

	local json="${RUNNER_TEMP:?RUNNER_TEMP is not set}/dbdeploy-${command//[^A-Za-z0-9_.-]/_}-${environment//[^A-Za-z0-9_.-]/_}.json"
	local summary_before=0
	if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$GITHUB_STEP_SUMMARY" ]; then
		summary_before=$(wc -c <"$GITHUB_STEP_SUMMARY")
	fi

	local code=0
	(
		if [ -n "${INPUT_WORKING_DIRECTORY:-}" ]; then cd "$INPUT_WORKING_DIRECTORY"; fi
		# Human progress goes to stderr, in the job's log; stdout is the one JSON document.
		exec "${cmd[@]}" >"$json"
	) || code=$?

	local status applied pending backup_id message annotation
	if jq -e 'type == "object"' "$json" >/dev/null 2>&1; then
		status=$(field '.status' "$json")
		applied=$(field '.result.migrations_applied // (.result.applied | if type == "array" then length else . end) // (if .operation == "preview-migrations" then 0 else null end)' "$json")
		# Known after a dry run or a status check; 0 after a successful deploy; unknown (empty)
		# after a failed one, which stops at the first failure.
		pending=$(field '.result.pending_migrations // (.result.pending | if type == "array" then length else . end) // (if .operation == "deploy-migrations" and .status == "success" then 0 else null end)' "$json")
		backup_id=$(field '.result.backup_id // .recovery.backup_id' "$json")
		message=$(field '.error.message // .message' "$json")
		# A workflow command's message escapes %, CR and LF as GitHub's toolkit does.
		annotation=$(field '(.error.message // .message) | gsub("%"; "%25") | gsub("\r"; "%0D") | gsub("\n"; "%0A")' "$json")
	else
		status=error applied="" pending="" backup_id=""
		message="dbdeploy exited with code $code without a JSON document (see the log above)"
		annotation=$message
	fi

	checked_output status '[a-z-]+' "$status"
	checked_output applied '[0-9]+' "$applied"
	checked_output pending '[0-9]+' "$pending"
	checked_output backup-id '[A-Za-z0-9._-]+' "$backup_id"
	output exit-code "$code"
	output json "$json"

	# `status` exits 4 when migrations are pending: that is an answer, not a failure (the
	# pending output says how many). Every other non-zero exit fails the step.
	local fail=$code
	if [ "${words[0]}" = status ] && [ "$code" -eq 4 ]; then fail=0; fi

	if [ "$fail" -ne 0 ]; then
		# dbdeploy scrubs its messages of URLs and passwords before they reach the document.
		echo "::error title=dbdeploy ${command} ${environment} failed (exit $code)::$annotation" >&2
	fi

	# A summary only when dbdeploy did not write one itself (future versions will).
	if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
		local summary_after=0
		if [ -f "$GITHUB_STEP_SUMMARY" ]; then summary_after=$(wc -c <"$GITHUB_STEP_SUMMARY"); fi
		if [ "$summary_after" -eq "$summary_before" ]; then
			{
				echo "### dbdeploy \`$command\` · $environment"
				echo
				echo "| status | exit code | applied | pending | backup |"
				echo "|---|---|---|---|---|"
				echo "| ${status:-error} | $code | ${applied:--} | ${pending:--} | ${backup_id:--} |"
				echo
				echo "$message"
				if [ -n "$backup_id" ] && [ "$fail" -ne 0 ]; then
					echo
					echo "To restore the backup taken before this run: \`dbdeploy rollback $environment --to $backup_id\`"
				fi
			} >>"$GITHUB_STEP_SUMMARY"
		fi
	fi
	return "$fail"
}

case "${1:-}" in
target) target ;;
resolve) resolve ;;
install) install ;;
run) run ;;
*)
	echo "usage: $0 target|resolve|install|run" >&2
	exit 2
	;;
esac
