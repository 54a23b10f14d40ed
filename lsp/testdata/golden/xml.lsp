<?xml version="1.0"?>
<?lsp local t = {"a","b"} ?>
<r><?lsp= table.concat(t, ",") ?></r>
<?lsp print("p", 1) ?>   
  
