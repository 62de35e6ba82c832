
m
$0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6dûÐ•ÿ¼1ÈÓ•ÿ¼1"ingest(M2webjs-18@J 4bf92f3577b34da6a3ce929d0e0e4736sessionjÝ
sync-1 *€+6281234567890BudiX€Ð•ÿ¼1b_
3EB0C767D26A1D8A+6281234567890"BudiJHaloPX€Ð•ÿ¼1Š6281234567890@s.whatsapp.netšchat*Ë*120363025246125888@g.us2Keluargab£
3EB0AAAA"Budi*120363025246125888@g.us2Keluarga:+6281111111111JHaloPX€Ð•ÿ¼1p‚$9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a’6281111111111@s.whatsapp.netšchat