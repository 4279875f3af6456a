# bash completion for patctl (pat: processes as threads).
# Completes subcommands and options, and group names from `patctl group list --json`.

_patctl_groups() {
  local socket_args=()
  [ -n "${_patctl_socket}" ] && socket_args=(--socket "${_patctl_socket}")
  patctl "${socket_args[@]}" group list --json 2>/dev/null |
    sed -n 's/^    "name": "\([^"]*\)",\{0,1\}$/\1/p'
}

_patctl() {
  local cur prev words cword
  _init_completion || return
  _patctl_socket=""
  local i command="" subcommand=""
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --socket) _patctl_socket="${words[i + 1]}"; ((i++)) ;;
      -*) ;;
      *)
        if [ -z "$command" ]; then
          command="${words[i]}"
        elif [ -z "$subcommand" ]; then
          subcommand="${words[i]}"
        fi
        ;;
    esac
  done

  case "$prev" in
    --socket) _filedir; return ;;
    --cwd) _filedir -d; return ;;
    --output | -o) _filedir; return ;;
    --group | -g) COMPREPLY=($(compgen -W "$(_patctl_groups)" -- "$cur")); return ;;
  esac

  case "$command" in
    "")
      COMPREPLY=($(compgen -W "status group run top events --socket --json --help --version" -- "$cur"))
      ;;
    status)
      COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
      ;;
    top)
      COMPREPLY=($(compgen -W "--group --interval --once --json --help" -- "$cur"))
      ;;
    events)
      COMPREPLY=($(compgen -W "--group --json --help" -- "$cur"))
      ;;
    group)
      case "$subcommand" in
        "") COMPREPLY=($(compgen -W "create list show destroy --help" -- "$cur")) ;;
        create) COMPREPLY=($(compgen -W "--allow-cross-mapping --json --help" -- "$cur")) ;;
        list) COMPREPLY=($(compgen -W "--json --help" -- "$cur")) ;;
        show) COMPREPLY=($(compgen -W "$(_patctl_groups) --json --help" -- "$cur")) ;;
        destroy) COMPREPLY=($(compgen -W "$(_patctl_groups) --force --grace-ms --json --help" -- "$cur")) ;;
      esac
      ;;
    run)
      if [ -n "$subcommand" ]; then
        # Past PROG: complete the program's own arguments as files.
        _filedir
      elif [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "--group --new-group --env --clear-env --cwd --detach --output --json --help" -- "$cur"))
      else
        COMPREPLY=($(compgen -c -- "$cur"))
      fi
      ;;
  esac
}

complete -F _patctl patctl
