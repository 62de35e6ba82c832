
	chat.syncÒ	"77:+6281234567890*ì
m
$0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6dûÐ•ÿ¼1ÈÓ•ÿ¼1"ingest(M2webjs-18@J 4bf92f3577b34da6a3ce929d0e0e473677:120363025246125888@g.usR_
3EB0C767D26A1D8A+6281234567890"BudiJHaloPX€Ð•ÿ¼1Š6281234567890@s.whatsapp.netšchat20
event_id$0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d2
trace_idÿ:unknown_sessionB!session webjs-1 is not registeredJ	chat-syncPXôÓ•ÿ¼1`ôÓ•ÿ¼1j$0b7e5a8e-2f59-4a8d-9c7e-1d2f3a4b5c6d