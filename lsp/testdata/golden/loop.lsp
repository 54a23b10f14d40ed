<html>
<?lsp for i=1,3 do ?>
<li><?lsp= i ?></li>
<?lsp end ?>
</html>
