<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>SMQ test</title></head><body><p>SMQ test app</p></body></html>
