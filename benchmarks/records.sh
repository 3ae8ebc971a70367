# Sourced by the benchmark scripts. keep_records ROOT OUT DIR...: copies the experiments' JSON
# records (config, summary, compute, per-branch metrics and curves) of each DIR under ROOT to the
# same relative path under OUT, where `lth report` can read them again.
keep_records() {
  local root=$1 out=$2 dir file; shift 2
  for dir in "$@"; do
    while IFS= read -r file; do
      mkdir -p "$out/$(dirname "${file#"$root"/}")"
      cp "$file" "$out/${file#"$root"/}"
    done < <(find "$dir" -name '*.json')
  done
}
