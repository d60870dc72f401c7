# fish completion for auks(1) (auks-rs)
# Installed as /usr/share/fish/vendor_completions.d/auks.fish.

complete -c auks -f
complete -c auks -s h -l help -d 'Show the usage and exit'
complete -c auks -l version -d 'Show the version and exit'
complete -c auks -s v -l verbose -d 'Increase the verbosity'
complete -c auks -s d -l debug -d 'Increase the debug level'
complete -c auks -s f -l config -r -F -d 'Configuration file'
complete -c auks -s p -l ping -d 'Ping auksd (default action)'
complete -c auks -s a -l add -d 'Add the TGT of the ccache'
complete -c auks -s g -l get -d 'Get the credential of -u uid'
complete -c auks -s r -l remove -d 'Remove the credential of -u uid'
complete -c auks -s D -l dump -d 'List every stored credential'
complete -c auks -s R -l renew -x -a 'once loop' -d 'Renew the ccache'
complete -c auks -s u -l uid -x -d 'Uid of the credential'
complete -c auks -s C -l ccache -x -d 'Credential cache'
complete -c auks -l send -d 'Write the credential of -u uid to stdout'
complete -c auks -l receive -d 'Store a --send blob from stdin'
