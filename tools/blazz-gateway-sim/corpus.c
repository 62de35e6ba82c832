/*
 * corpus.c - the word lists behind corpus.h. Indonesian first (the seeds'
 * users are Indonesian businesses), with some English, as a real inbox mixes.
 */
#include "corpus.h"

#define WORDS(name, ...)                                                  \
    static const char *const name##_items[] = {__VA_ARGS__};              \
    const bz_sim_words name = {name##_items, sizeof name##_items / sizeof name##_items[0]}

WORDS(bz_sim_first_names, "Budi", "Siti", "Agus", "Dewi", "Rina", "Andi", "Putri", "Joko",
      "Wati", "Ahmad", "Nur", "Dian", "Eko", "Sri", "Fajar", "Indah", "Rizky", "Ayu", "Hendra",
      "Maya", "Yusuf", "Lestari", "Bayu", "Fitri", "Dimas", "Ratna", "Arif", "Nadia", "Teguh",
      "Citra", "Wahyu", "Intan", "Galih", "Kartika", "Reza", "Mega", "Irfan", "Sari", "Hadi",
      "Anisa", "Michael", "Sarah", "Kevin", "Jessica", "Daniel", "Linda", "Kadek", "Made",
      "Nyoman", "Ketut");
WORDS(bz_sim_last_names, "Santoso", "Wijaya", "Saputra", "Lestari", "Pratama", "Hidayat",
      "Kusuma", "Nugroho", "Setiawan", "Permata", "Susanto", "Halim", "Gunawan", "Siregar",
      "Nasution", "Simanjuntak", "Harahap", "Wibowo", "Purnomo", "Rahmawati", "Sitompul",
      "Tanjung", "Hakim", "Utami", "Ramadhan", "Firmansyah", "Kurniawan", "Suharto", "Putra",
      "Anggraini", "Tan", "Lim", "Wirawan", "Suryadi", "Maharani");
WORDS(bz_sim_businesses, "Toko Batik Sekar", "Kopi Nusantara", "Bengkel Jaya Motor",
      "Klinik Sehat Sentosa", "Rumah Kue Bunda", "Griya Properti", "Laundry Kilat",
      "Apotek Sumber Waras", "Warung Sate Pak Kumis", "Optik Terang", "Toko Bangunan Maju",
      "Salon Cantik Ayu", "Travel Wisata Bali", "Bimbel Cerdas", "Katering Berkah",
      "Distro Anak Muda", "Toko Elektronik Sinar", "Petshop Sahabat");
WORDS(bz_sim_group_names, "Keluarga Besar", "Alumni SMA 3", "Reseller Batch 7",
      "Arisan Ibu-Ibu RT 05", "Tim Marketing", "Grosir Jabodetabek", "Komunitas Sepeda",
      "Info Promo Member", "Panitia 17an", "Driver Area Selatan", "Supplier Kain",
      "Admin Toko Cabang", "Futsal Kamis Malam", "Pengajian Al-Ikhlas", "Customer VIP",
      "Project Renovasi", "Kelas Bahasa Inggris", "Agen Pulsa Nusantara");
WORDS(bz_sim_inbound_bodies, "Halo kak, apakah produk ini masih ready?",
      "Berapa ongkirnya ke Bandung?", "Terima kasih, pesanan sudah sampai",
      "Kak, bisa kirim katalog terbaru?", "Saya mau pesan 2 ya, warna hitam",
      "Sudah transfer ya kak, mohon dicek", "Apakah bisa COD?", "Jam buka toko sampai jam berapa?",
      "Pesanan saya belum sampai, nomor resinya berapa?", "Ada diskon untuk pembelian grosir?",
      "Ok kak siap", "Minta invoice nya dong", "Bisa booking untuk hari Sabtu jam 10?",
      "Masih ada promo 11.11?", "Barangnya rusak waktu sampai, bagaimana?",
      "Hi, is this still available?", "Can I get the invoice please?",
      "What time do you close today?", "Thanks! Received it.", "Kak ukurannya ada yang XL?",
      "Mau tanya cara pembayarannya gimana ya", "Alamat tokonya di mana?", "P", "Halo",
      "Selamat pagi, mau konsultasi", "Ditunggu kabarnya ya kak 🙏",
      "Sudah saya kirim bukti transfernya", "Bisa dikirim hari ini?");
WORDS(bz_sim_outbound_bodies, "Halo kak, masih ready ya 😊", "Ongkir ke Bandung Rp18.000 kak",
      "Baik kak, pesanan sudah kami proses", "Terima kasih sudah berbelanja!",
      "Nomor resi: JNE 0123456789", "Siap kak, kami cek dulu ya",
      "Pembayaran sudah kami terima, terima kasih", "Toko buka jam 08.00-21.00 kak",
      "Berikut katalog terbaru kami", "Mohon maaf atas ketidaknyamanannya kak",
      "Sure, sending the invoice now.", "We are open until 9 pm.", "Promo berlaku sampai Minggu kak");
WORDS(bz_sim_group_bodies, "Info dong, besok jadi kumpul jam berapa?", "Siap, saya ikut",
      "Jangan lupa bawa dokumennya ya", "Mantap 👍", "Sudah saya share di grup sebelah",
      "Update stok hari ini ada di file terlampir", "Yang belum bayar iuran mohon segera ya",
      "Wkwkwk", "Setuju", "Nanti saya kabari lagi", "Selamat ulang tahun! 🎉",
      "Ada yang tahu bengkel dekat sini?", "Rapat diundur jam 4 sore");
WORDS(bz_sim_captions, "Ini fotonya kak", "Bukti transfer", "Produk yang saya maksud",
      "Kondisi barang waktu sampai", "Katalog terbaru", "Lokasi toko", "", "");
WORDS(bz_sim_documents, "Invoice-2025-10.pdf", "Katalog-Produk.pdf", "Surat-Penawaran.docx",
      "Daftar-Harga-Grosir.xlsx", "Bukti-Transfer.pdf", "Form-Pendaftaran.pdf");
WORDS(bz_sim_places, "Grand Indonesia|Jl. M.H. Thamrin No.1, Jakarta|-6.1951|106.8213",
      "Pasar Beringharjo|Jl. Margo Mulyo, Yogyakarta|-7.7989|110.3653",
      "Gedung Sate|Jl. Diponegoro No.22, Bandung|-6.9025|107.6188",
      "Pantai Kuta|Kuta, Badung, Bali|-8.7177|115.1687",
      "Tunjungan Plaza|Jl. Basuki Rahmat, Surabaya|-7.2623|112.7386");
WORDS(bz_sim_emojis, "👍", "❤️", "😂", "😮", "😢", "🙏");
WORDS(bz_sim_disconnect_details, "Connection Closed", "Timed Out", "stream:error conflict",
      "Navigation failed", "Session closed: browser disconnected", "LOGOUT",
      "Evaluation failed: TypeError", "CONFLICT: opened on another device");

const char *bz_sim_pick(bz_sim_rng *r, const bz_sim_words *w)
{
    return w->items[bz_sim_rng_below(r, w->count)];
}
