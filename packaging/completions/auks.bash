# bash completion for auks(1) (auks-rs)
# Installed as /usr/share/bash-completion/completions/auks.

_auks() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    case "$prev" in
        -f | --config)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        -R | --renew)
            COMPREPLY=($(compgen -W "once loop" -- "$cur"))
            return
            ;;
        -u | --uid)
            COMPREPLY=($(compgen -W "$(getent passwd 2>/dev/null | cut -d: -f3)" -- "$cur"))
            return
            ;;
        -C | --ccache)
            COMPREPLY=($(compgen -W "FILE: DIR: KEYRING: KCM: MEMORY:" -- "$cur"))
            if [[ "$cur" == FILE:* ]]; then
                COMPREPLY=($(compgen -f -P FILE: -- "${cur#FILE:}"))
            fi
            return
            ;;
    esac
    COMPREPLY=($(compgen -W "-h --help --version -v --verbose -d --debug -f --config
        -p --ping -a --add -g --get -r --remove -D --dump -R --renew -u --uid
        -C --ccache --send --receive" -- "$cur"))
}
complete -F _auks auks
