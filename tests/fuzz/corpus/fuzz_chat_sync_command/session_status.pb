
m
$0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6dûĞ•ÿ¼1ÈÓ•ÿ¼1"ingest(M2webjs-18@J 4bf92f3577b34da6a3ce929d0e0e4736sessionb22@abc,def,ghi