

starts with newlines
and crlf

<?lsp -- a comment ?>after
next <?= 1+1 ?>
